package sandbox

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A server started as root gives every capsule a disk of its own: an ext4
// file system in a sparse image file (DataDir/disks/<id>.img) of the
// capsule's DiskMB, attached to a loop device and mounted at the capsule's
// data directory. Its root directory, private directories and system
// layers all live there, so that writing past the quota fails with ENOSPC
// inside the capsule, and the host's disk holds at most the image's size.
// Images are copies of one formatted template per size (sparse: a few
// MB), so that a capsule's start does not format a file system.

// disks makes and mounts the capsules' disks; nil when the machine has
// no loop devices or mkfs.ext4 (the quota is then not enforced).
type disks struct {
	dir  string // DataDir/disks
	mkfs string

	mu        sync.Mutex
	templates map[int]string // size in MB -> template image
	// ready holds disks made ahead of time, per size in MB, mounted
	// below dir: a capsule's start only moves one to its data
	// directory. The pool is refilled in the background.
	ready   map[int][]string
	filling map[int]bool
	closed  bool
	fills   sync.WaitGroup
}

// readyDisks is how many disks of a size are kept made ahead of time.
const readyDisks = 2

// newDisks returns the runtime's disks, or nil when the server is not root
// or this machine cannot make them.
func newDisks(dataDir string) *disks {
	if os.Geteuid() != 0 {
		return nil
	}
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		return nil
	}
	f, err := os.OpenFile("/dev/loop-control", os.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	f.Close()
	dir := filepath.Join(dataDir, "disks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil
	}
	return &disks{dir: dir, mkfs: mkfs, templates: map[int]string{}, ready: map[int][]string{}, filling: map[int]bool{}}
}

// template returns the formatted template image of sizeMB, making it the
// first time.
func (d *disks) template(sizeMB int) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p, ok := d.templates[sizeMB]; ok {
		return p, nil
	}
	p := filepath.Join(d.dir, ".template-"+strconv.Itoa(sizeMB)+".img")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	err = f.Truncate(int64(sizeMB) << 20)
	f.Close()
	if err != nil {
		return "", err
	}
	// No journal and no reserved blocks: a capsule's scratch disk, whose
	// every block is the capsule's.
	out, err := exec.Command(d.mkfs, "-q", "-F", "-m", "0", "-O", "^has_journal",
		"-E", "lazy_itable_init=1,nodiscard", p).CombinedOutput()
	if err != nil {
		_ = os.Remove(p)
		return "", fmt.Errorf("mkfs.ext4: %v: %s", err, out)
	}
	d.templates[sizeMB] = p
	return p, nil
}

// mount mounts a disk of sizeMB at dir as the capsule id's: one made
// ahead of time when there is one, else a new one.
func (d *disks) mount(id, dir string, sizeMB int) error {
	defer d.refill(sizeMB)
	d.mu.Lock()
	var name string
	if n := len(d.ready[sizeMB]); n > 0 {
		name = d.ready[sizeMB][n-1]
		d.ready[sizeMB] = d.ready[sizeMB][:n-1]
	}
	d.mu.Unlock()
	if name == "" {
		return d.make(id, dir, sizeMB)
	}
	pooled := filepath.Join(d.dir, name)
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		err = syscall.Mount(pooled, dir, "", syscall.MS_BIND, "")
	}
	_ = syscall.Unmount(pooled, syscall.MNT_DETACH)
	_ = os.Remove(pooled)
	if err == nil {
		err = os.Rename(d.image(name), d.image(id))
	}
	if err != nil {
		_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		_ = os.Remove(d.image(name))
		return fmt.Errorf("sandbox: disk: %w", err)
	}
	return nil
}

// refill makes disks of sizeMB ahead of time in the background until
// readyDisks of them wait.
func (d *disks) refill(sizeMB int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.filling[sizeMB] {
		return
	}
	d.filling[sizeMB] = true
	d.fills.Add(1)
	go func() {
		defer d.fills.Done()
		for {
			d.mu.Lock()
			if d.closed || len(d.ready[sizeMB]) >= readyDisks {
				d.filling[sizeMB] = false
				d.mu.Unlock()
				return
			}
			d.mu.Unlock()
			name := ".ready-" + randomHex(8)
			if err := d.make(name, filepath.Join(d.dir, name), sizeMB); err != nil {
				d.mu.Lock()
				d.filling[sizeMB] = false
				d.mu.Unlock()
				return
			}
			d.mu.Lock()
			d.ready[sizeMB] = append(d.ready[sizeMB], name)
			d.mu.Unlock()
		}
	}()
}

// close stops the refills and removes the disks made ahead of time.
func (d *disks) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.fills.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, names := range d.ready {
		for _, name := range names {
			_ = d.unmount(name, filepath.Join(d.dir, name))
			_ = os.Remove(filepath.Join(d.dir, name))
		}
	}
	d.ready = map[int][]string{}
	// The templates and whatever capsule images are gone with it.
	_ = os.RemoveAll(d.dir)
}

// make makes a new disk image of sizeMB, as the capsule id's, and mounts
// it at dir.
func (d *disks) make(id, dir string, sizeMB int) (err error) {
	tpl, err := d.template(sizeMB)
	if err != nil {
		return fmt.Errorf("sandbox: disk: %w", err)
	}
	img := d.image(id)
	if err := copySparse(tpl, img); err != nil {
		_ = os.Remove(img)
		return fmt.Errorf("sandbox: disk: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(img)
		}
	}()
	dev, err := attachLoop(img)
	if err != nil {
		return fmt.Errorf("sandbox: disk: %w", err)
	}
	// The loop device detaches itself once unmounted (autoclear); until
	// then it is held by dev.
	defer dev.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sandbox: disk: %w", err)
	}
	// noinit_itable: the kernel does not zero the inode tables in the
	// background, which would write the whole image's tables out.
	if err := syscall.Mount(dev.Name(), dir, "ext4", syscall.MS_NOSUID|syscall.MS_NODEV, "noinit_itable"); err != nil {
		return fmt.Errorf("sandbox: disk: mount: %w", err)
	}
	return nil
}

func (d *disks) image(id string) string { return filepath.Join(d.dir, id+".img") }

// unmount detaches the capsule's disk from dir and removes its image. The
// loop device goes once the capsule's last mount of it does.
func (d *disks) unmount(id, dir string) error {
	var errs []error
	if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
		errs = append(errs, fmt.Errorf("sandbox: unmount disk: %w", err))
	}
	if err := os.Remove(d.image(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("sandbox: remove disk: %w", err))
	}
	return errors.Join(errs...)
}

// ext4Shutdown is EXT4_IOC_SHUTDOWN, and ext4ShutdownNoFlush its flag
// that drops what is not yet written instead of writing it.
const (
	ext4Shutdown        = 0x8004587d // _IOR('X', 125, __u32)
	ext4ShutdownNoFlush = 2
)

// discard shuts the file system mounted at dir down without writing its
// dirty data: the capsule is going, and so is its image, so the data a
// capsule wrote but the kernel has not yet written back would only be
// written to be deleted. Unmounting a disk that holds hundreds of MB of it
// otherwise waits for all of it to go through the loop device (0.3 s per
// 200 MB on an idle machine, many seconds on a busy disk). Every file
// operation on the disk fails from then on.
func (d *disks) discard(dir string) error {
	f, err := os.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	flag := uint32(ext4ShutdownNoFlush)
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), ext4Shutdown, uintptr(unsafe.Pointer(&flag)))
	if errno != 0 {
		return errno
	}
	return nil
}

// attachLoop attaches img to a free loop device and returns the device,
// opened.
func attachLoop(img string) (*os.File, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	back, err := os.OpenFile(img, os.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer back.Close()
	for range 64 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("free loop device: %w", err)
		}
		name := "/dev/loop" + strconv.Itoa(n)
		if _, err := os.Stat(name); errors.Is(err, os.ErrNotExist) {
			// /dev without udev: make the node.
			_ = unix.Mknod(name, unix.S_IFBLK|0o600, int(unix.Mkdev(7, uint32(n))))
		}
		dev, err := os.OpenFile(name, os.O_RDWR|syscall.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		cfg := unix.LoopConfig{Fd: uint32(back.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		if err == nil {
			return dev, nil
		}
		dev.Close()
		if !errors.Is(err, syscall.EBUSY) {
			return nil, fmt.Errorf("configure %s: %w", name, err)
		}
		// Taken by another start since GET_FREE: try the next one.
	}
	return nil, errors.New("no free loop device")
}

// copySparse copies src to dst, data segments only, so that dst stays as
// sparse as src.
func copySparse(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := out.Truncate(fi.Size()); err != nil {
		return err
	}
	var off int64
	for off < fi.Size() {
		data, err := unix.Seek(int(in.Fd()), off, unix.SEEK_DATA)
		if err != nil {
			if errors.Is(err, syscall.ENXIO) {
				break // only a hole is left
			}
			return err
		}
		hole, err := unix.Seek(int(in.Fd()), data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		if _, err := in.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := out.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.CopyN(out, in, hole-data); err != nil {
			return err
		}
		off = hole
	}
	return out.Close()
}
