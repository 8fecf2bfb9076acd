package bpf

//go:generate go tool bpf2go -target bpfel -type layout -type cfg_flags -cflags "-O2 -g -Wall -I/usr/include/x86_64-linux-gnu" Nr datapath.c
