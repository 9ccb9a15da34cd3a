package testserver

import (
	"net"
	"strconv"
)

func mustPort(hostport string) int {
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		panic(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		panic(err)
	}
	return n
}
