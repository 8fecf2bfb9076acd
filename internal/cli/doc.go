// Package cli is netreconcile's command line: the root command, the flags
// every verb shares (globals.go, flags.go) and one file per verb. main()
// runs NewRoot and turns what it returns into an exit status with Exit.
//
// The verbs parse flags and print; the work is done by the packages they
// call (spec, reconcile, daemon, lab, policy, probe).
package cli
