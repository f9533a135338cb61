//go:build js

package device

// defaultSpool is memory in a browser: it has no file system (os.CreateTemp
// fails there).
func defaultSpool(string) Spool { return MemorySpool{} }
