//go:build unix

package discovery

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

func statExe(link string) (ExeKey, fs.FileInfo, error) {
	fi, err := os.Stat(link)
	if err != nil {
		return ExeKey{}, nil, err
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ExeKey{}, nil, errors.New("no stat_t")
	}
	return ExeKey{Dev: uint64(sys.Dev), Ino: uint64(sys.Ino)}, fi, nil
}
