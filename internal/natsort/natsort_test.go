package natsort

import (
	"slices"
	"testing"
)

func TestCompare(t *testing.T) {
	got := []string{"pod10", "pod2", "pod1", "x/a10b", "x/a9b", "x/a09b", "node-b", "node-a", "pod", "pod02"}
	slices.SortFunc(got, Compare)
	want := []string{"node-a", "node-b", "pod", "pod1", "pod2", "pod02", "pod10", "x/a9b", "x/a09b", "x/a10b"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	for _, c := range [][2]string{{"a", "a"}, {"a1", "a1"}} {
		if Compare(c[0], c[1]) != 0 {
			t.Errorf("%q vs %q not equal", c[0], c[1])
		}
	}
}
