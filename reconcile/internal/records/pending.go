package records

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/netreconcile/netreconcile/internal/statedir"
)

// SetPending records that link key (of owner) is about to be created.
func (d Dir) SetPending(key, owner string) error {
	dir := d.sub("pending")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("record pending link %s: %w", key, err)
	}
	if err := statedir.WriteFile(filepath.Join(dir, url.PathEscape(key)), []byte(owner+"\n"), 0o600); err != nil {
		return fmt.Errorf("record pending link %s: %w", key, err)
	}
	return nil
}

// ClearPending removes the record once the link carries its mark.
func (d Dir) ClearPending(key string) error {
	err := os.Remove(filepath.Join(d.sub("pending"), url.PathEscape(key)))
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("clear pending link %s: %w", key, err)
	}
	return nil
}

// Pending returns link keys recorded as being created, with owners.
func (d Dir) Pending() (map[string]string, error) {
	dir := d.sub("pending")
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read state %s: %w", dir, err)
	}
	out := map[string]string{}
	for _, e := range ents {
		key, err := url.PathUnescape(e.Name())
		if err != nil {
			continue
		}
		b, err := statedir.ReadFile(filepath.Join(dir, e.Name()), maxRecord)
		if err != nil {
			return nil, fmt.Errorf("read state %s: %w", e.Name(), err)
		}
		out[key] = strings.TrimSpace(string(b))
	}
	return out, nil
}

// ClearAllPending drops every pending record. After a verified pass every
// link of ours carries its mark, so the records are obsolete (one left
// by a crash names a link that never came to exist).
func (d Dir) ClearAllPending() error {
	if err := os.RemoveAll(d.sub("pending")); err != nil {
		return fmt.Errorf("clear pending records: %w", err)
	}
	return nil
}
