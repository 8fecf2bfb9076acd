package plan

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestStableSorted: sorting in place through the index permutation keeps
// changes of equal keys in their order, as a stable sort does, for lists
// with few and with many distinct keys.
func TestStableSorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	byOwner := func(a, b *Change) int { return strings.Compare(a.Owner, b.Owner) }
	for _, n := range []int{0, 1, 2, 7, 100, 3000} {
		for _, owners := range []int{1, 3, 50, 5000} {
			cs := make([]Change, n)
			for i := range cs {
				cs[i] = Change{Key: fmt.Sprint(i), Owner: fmt.Sprint(rng.IntN(owners))}
			}
			want := slices.Clone(cs)
			slices.SortStableFunc(want, func(a, b Change) int { return byOwner(&a, &b) })
			got := stableSorted(cs, byOwner)
			if !slices.EqualFunc(got, want, func(a, b Change) bool { return a.Key == b.Key && a.Owner == b.Owner }) {
				t.Fatalf("%d changes, %d owners: not the stable order", n, owners)
			}
		}
	}
}
