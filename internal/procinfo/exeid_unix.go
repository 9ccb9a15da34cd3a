//go:build !windows

package procinfo

import (
	"fmt"
	"os"
	"syscall"
)

// ExeID identifies the file pid executes (device and inode), so that an exec into
// another program is noticed; it is empty when the process is gone.
func ExeID(pid int) string {
	fi, err := os.Stat(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return ""
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	}
	return fi.Name()
}
