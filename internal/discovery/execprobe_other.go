//go:build !linux

package discovery

import (
	"context"
	"errors"
)

type procSignal struct {
	pid  int
	exit bool
}

func startExecProbe(context.Context) (<-chan procSignal, func(), error) {
	return nil, nil, errors.New("the exec tracepoint needs Linux eBPF")
}
