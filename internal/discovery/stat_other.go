//go:build !unix

package discovery

import (
	"errors"
	"io/fs"
)

func statExe(string) (ExeKey, fs.FileInfo, error) {
	return ExeKey{}, nil, errors.New("process discovery needs Linux /proc")
}
