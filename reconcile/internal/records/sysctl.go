package records

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/netreconcile/netreconcile/internal/statedir"
)

func (d Dir) sysctlRecord(name string) string {
	return filepath.Join(d.sub("sysctl"), strings.ReplaceAll(name, "/", "."))
}

// RecordSysctl records the original value of node sysctl name, read by
// original, before netreconcile first changes it; a sysctl recorded
// already keeps its record (the value now is netreconcile's).
func (d Dir) RecordSysctl(name string, original func() (string, error)) error {
	rec := d.sysctlRecord(name)
	if _, err := os.Lstat(rec); !os.IsNotExist(err) {
		return nil
	}
	orig, err := original()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(rec), 0o700); err != nil {
		return fmt.Errorf("record sysctl %s: %w", name, err)
	}
	if err := statedir.WriteFile(rec, []byte(orig+"\n"), 0o600); err != nil {
		return fmt.Errorf("record sysctl %s: %w", name, err)
	}
	return nil
}

// SysctlOriginal returns the recorded original value of sysctl name.
func (d Dir) SysctlOriginal(name string) (string, error) {
	b, err := statedir.ReadFile(d.sysctlRecord(name), maxRecord)
	if err != nil {
		return "", fmt.Errorf("read the record of sysctl %s: %w", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// ForgetSysctl removes the record of sysctl name (restored).
func (d Dir) ForgetSysctl(name string) error {
	if err := os.Remove(d.sysctlRecord(name)); err != nil {
		return fmt.Errorf("remove the record of sysctl %s: %w", name, err)
	}
	return nil
}
