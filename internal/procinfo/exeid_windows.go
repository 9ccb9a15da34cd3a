package procinfo

// ExeID is empty on Windows, which has no /proc.
func ExeID(int) string { return "" }
