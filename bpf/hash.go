package bpf

import (
	"crypto/sha256"
	"encoding/hex"
)

// ObjectHash identifies this build's eBPF object. The datapath pins the
// programs of a build under it, so that a later run of the same build can
// tell its own programs from others' without loading (and verifying)
// anything.
func ObjectHash() string {
	sum := sha256.Sum256(_NrBytes)
	return hex.EncodeToString(sum[:8])
}
