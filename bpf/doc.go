// Package bpf holds netreconcile's eBPF service datapath: the C source
// (datapath.c, policy.h) and the objects and Go bindings that bpf2go
// generates from it (nr_bpfel.go, nr_bpfel.o), committed so that building
// needs no clang. Run `go generate ./bpf` after changing the C, and
// check-generated.sh (or the test in this package) to prove the committed
// objects are current.
//
// Package datapath is the only intended user: it loads these objects, pins
// their maps and programs them.
package bpf
