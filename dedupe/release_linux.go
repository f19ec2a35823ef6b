package dedupe

import "syscall"

// releaseMapped advises the kernel that [data, data+size) of a shared file
// mapping is not needed: its page table entries go, the file's pages stay
// cached. (The raw system call takes the address as bbolt gives it.)
func releaseMapped(data uintptr, size int) error {
	if data == 0 || size <= 0 {
		return nil
	}
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, data, uintptr(size), syscall.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}
