//go:build !js

package device

func defaultSpool(dir string) Spool { return DiskSpool{Dir: dir} }
