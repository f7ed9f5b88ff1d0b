package chunk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// Disk keeps entries as files in a directory, one per key
// (DIR/ab/abcdef....kvc), so they survive a restart. A file is written to
// a temporary name in the same directory, synced and renamed over the
// final one, so a reader sees a whole entry or none, and a crash leaves at
// worst a temporary file (removed when the directory is opened next).
type Disk struct {
	dir   string
	bytes atomic.Int64
}

// OpenDisk opens (creating it if needed) the directory dir as a tier,
// removes the temporary files an interrupted write left and counts the
// bytes of the entries there.
func OpenDisk(dir string) (*Disk, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("chunk: disk tier: %w", err)
	}
	d := &Disk{dir: dir}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if strings.HasSuffix(p, ".tmp") {
			os.Remove(p)
			return nil
		}
		if info, err := e.Info(); err == nil && strings.HasSuffix(p, ".kvc") {
			d.bytes.Add(info.Size())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("chunk: disk tier: %w", err)
	}
	return d, nil
}

// Name is "disk".
func (d *Disk) Name() string { return "disk" }

// Dir is the tier's directory.
func (d *Disk) Dir() string { return d.dir }

// Path is the file of an entry id.
func (d *Disk) Path(id string) string {
	if len(id) < 3 || strings.ContainsAny(id, `/\.`) {
		id = "invalid-" + strings.NewReplacer("/", "_", `\`, "_", ".", "_").Replace(id)
	}
	return filepath.Join(d.dir, id[:2], id+".kvc")
}

// Get reads an entry's message.
func (d *Disk) Get(ctx context.Context, id string) ([]byte, error) {
	b, err := os.ReadFile(d.Path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	return b, err
}

// Put writes an entry's message atomically.
func (d *Disk) Put(ctx context.Context, id string, b []byte) error {
	p := d.Path(id)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), filepath.Base(p)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var old int64
	if info, serr := os.Stat(p); serr == nil {
		old = info.Size()
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	d.bytes.Add(int64(len(b)) - old)
	return nil
}

// Delete removes an entry.
func (d *Disk) Delete(ctx context.Context, id string) error {
	p := d.Path(id)
	info, err := os.Stat(p)
	if err != nil {
		return nil
	}
	if err := os.Remove(p); err != nil {
		return err
	}
	d.bytes.Add(-info.Size())
	return nil
}

// Bytes is the size of the entries in the directory.
func (d *Disk) Bytes() int64 { return d.bytes.Load() }
