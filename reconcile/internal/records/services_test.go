package records

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestServiceOwnersRecord: the services record reads back what was
// recorded; it is not rewritten when it holds the same owners, and is
// removed when none is left; lines netreconcile does not write are left
// out with a warning each; a symbolic link in its place is not followed.
func TestServiceOwnersRecord(t *testing.T) {
	d := For(t.TempDir(), "n1")
	if got, warns, err := d.ServiceOwners(); err != nil || len(got) != 0 || len(warns) != 0 {
		t.Fatalf("no record: %v, %v, %v", got, warns, err)
	}
	owners := map[string]string{"10.96.0.10:80/TCP": "service/x/web", "10.96.0.10:53/UDP": "service/x/dns"}
	if err := d.RecordServiceOwners(owners); err != nil {
		t.Fatal(err)
	}
	got, warns, err := d.ServiceOwners()
	if err != nil || len(warns) != 0 || !reflect.DeepEqual(got, owners) {
		t.Fatalf("read back %v (warnings %v, %v), want %v", got, warns, err, owners)
	}
	path := filepath.Join(string(d), "services")
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.RecordServiceOwners(map[string]string{"10.96.0.10:53/UDP": "service/x/dns", "10.96.0.10:80/TCP": "service/x/web"}); err != nil {
		t.Fatal(err)
	}
	if after, err := os.Stat(path); err != nil || !os.SameFile(before, after) {
		t.Errorf("the same owners rewrote the record (%v)", err)
	}

	bad := "10.96.0.10:80/TCP service/x/web\n" +
		"10.96.0.11:80/ICMP service/x/a\n" + // not a protocol of services
		"10.96.0.12:80/TCP pod/x/a\n" + // not a service
		"10.96.0.13:80/TCP service/x/a b\n" + // a space in the owner
		"010.96.0.14:80/TCP service/x/a\n" + // not as the key is written
		"garbage\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	got, warns, err = d.ServiceOwners()
	if err != nil || !reflect.DeepEqual(got, map[string]string{"10.96.0.10:80/TCP": "service/x/web"}) || len(warns) != 5 {
		t.Errorf("forged lines: got %v, %d warnings %v, %v", got, len(warns), warns, err)
	}

	if err := d.RecordServiceOwners(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("no owners left: the record is still there (%v)", err)
	}

	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("10.96.0.10:80/TCP service/x/web\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, path); err != nil {
		t.Fatal(err)
	}
	if got, warns, err := d.ServiceOwners(); err != nil || len(got) != 0 || len(warns) != 1 {
		t.Errorf("a symbolic link as the record: got %v, warnings %v, %v; want it ignored with a warning", got, warns, err)
	}
	if err := d.RecordServiceOwners(owners); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(secret); err != nil || string(b) != "10.96.0.10:80/TCP service/x/web\n" {
		t.Errorf("recording through a symbolic link changed its target: %q, %v", b, err)
	}
	if got, _, err := d.ServiceOwners(); err != nil || !reflect.DeepEqual(got, owners) {
		t.Errorf("the record that replaced the link reads %v, %v", got, err)
	}
}

// TestServiceOwnersRemembered: the record this process wrote or read
// last is not parsed or written again while the file holds it, and a
// record changed behind its back is read, and rewritten, as it is.
func TestServiceOwnersRemembered(t *testing.T) {
	d := For(t.TempDir(), "n1")
	path := filepath.Join(string(d), "services")
	owners := map[string]string{"10.96.0.10:80/TCP": "service/x/web"}
	if err := d.RecordServiceOwners(owners); err != nil {
		t.Fatal(err)
	}
	first, _, err := d.ServiceOwners()
	if err != nil || !reflect.DeepEqual(first, owners) {
		t.Fatalf("read back %v, %v", first, err)
	}
	if again, _, _ := d.ServiceOwners(); reflect.ValueOf(again).UnsafePointer() != reflect.ValueOf(first).UnsafePointer() {
		t.Error("the same record was parsed again")
	}
	// Changed by hand, same length: read as it is now.
	if err := os.WriteFile(path, []byte("10.96.0.10:80/TCP service/x/abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := d.ServiceOwners(); got["10.96.0.10:80/TCP"] != "service/x/abc" {
		t.Errorf("a record changed by hand read as %v", got)
	}
	// Changed by hand again: recording the owners it held before writes
	// them back.
	if err := os.WriteFile(path, []byte("10.96.0.10:80/TCP service/x/xyz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.RecordServiceOwners(map[string]string{"10.96.0.10:80/TCP": "service/x/abc"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "10.96.0.10:80/TCP service/x/abc\n" {
		t.Errorf("record after recording over a hand change: %q", b)
	}
}
