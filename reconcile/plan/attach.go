package plan

import "github.com/netreconcile/netreconcile/state"

// SplitAttaches returns p without the attachments it makes that can run
// last, and those attachments. An attachment of a pod that the plan makes
// reachable (its endpoint, addresses, neighbours or routes created or
// re-added: a new pod, or one whose link is replaced) stays in its place,
// before them, so the pod is isolated from its first packet; a pod that
// is reachable already gains nothing from having its attachment sooner.
func SplitAttaches(p *Plan) (rest, atts *Plan) {
	reachable := map[string]bool{}
	for _, c := range p.steps {
		switch KindOf(c) {
		case state.KindEndpoint, state.KindAddr, state.KindNeigh, state.KindRoute:
			if c.Action != Delete {
				reachable[c.Owner] = true
			}
		}
	}
	split := func(cs []Change) (rest, atts []Change) {
		for _, c := range cs {
			if c.Action != Delete && KindOf(c) == state.KindAttach && !reachable[c.Owner] {
				atts = append(atts, c)
			} else {
				rest = append(rest, c)
			}
		}
		return rest, atts
	}
	rest, atts = &Plan{Node: p.Node}, &Plan{Node: p.Node}
	rest.Changes, atts.Changes = split(p.Changes)
	rest.steps, atts.steps = split(p.steps)
	return rest, atts
}
