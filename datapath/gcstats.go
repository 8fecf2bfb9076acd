package datapath

// ReadGCStats reads what the in-kernel conntrack collector has done so
// far, without running a walk (RunGC does): it needs the maps alone, so it
// works on a Datapath from Inspect, as show and the metrics use it.
func (d *Datapath) ReadGCStats() (GCStats, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gcStats()
}
