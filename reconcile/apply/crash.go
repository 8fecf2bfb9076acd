//go:build !crashtest

package apply

// afterChange runs after the n-th change of an apply (counted across its
// parts). Product builds do nothing here: the crash tests' fault
// injection is in crash_crashtest.go, built with -tags crashtest only.
func afterChange(int64) {}
