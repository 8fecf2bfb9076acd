package nsutil

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// RetryDump runs a netlink dump again when the kernel reports that it was
// interrupted by a concurrent change (the results would be partial).
func RetryDump[T any](f func() (T, error)) (T, error) {
	var (
		v   T
		err error
	)
	for range 5 {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// IsLinkNotFound reports whether err says that a link does not exist.
func IsLinkNotFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.As(err, &lnf)
}
