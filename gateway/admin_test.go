package gateway

import (
	"testing"

	"github.com/surgefn/surge/manifests"
	"github.com/surgefn/surge/runtime/wire"
)

// TestInfoAutoscale: a row of GET /admin/functions takes the bounds from
// the manifest and sums instances and desired over the hosts that run the
// deployed revision.
func TestInfoAutoscale(t *testing.T) {
	f := fn("scaled", "POST", "/v1/scaled", false, "")
	f.Spec.Replicas = 2
	f.Spec.Autoscale = &manifests.Autoscale{Min: 2, Max: 6, TargetInFlight: 10}
	rev := f.Revision()
	hosts := []wire.HostStatus{
		{Host: "a", Functions: map[string]wire.FunctionStatus{"scaled": {Revision: rev, Instances: 3,
			Autoscale: &wire.AutoscaleStatus{Desired: 3, Min: 2, Max: 6, Signal: 25}}}},
		{Host: "b", Functions: map[string]wire.FunctionStatus{"scaled": {Revision: rev, Instances: 2,
			Autoscale: &wire.AutoscaleStatus{Desired: 4, Min: 2, Max: 6, Signal: 31}}}},
		{Host: "old", Functions: map[string]wire.FunctionStatus{"scaled": {Revision: "000000000000", Instances: 6,
			Autoscale: &wire.AutoscaleStatus{Desired: 6, Min: 1, Max: 6}}}},
	}
	fi := info(manifests.Deployed{Function: f, Seq: 1}, hosts)
	if fi.Instances != 5 || fi.Hosts != 2 || fi.Autoscale == nil || *fi.Autoscale != (AutoscaleInfo{Min: 2, Max: 6, Desired: 7}) {
		t.Errorf("info = %d instances on %d hosts, autoscale %+v; want 5 on 2, {2 6 7}", fi.Instances, fi.Hosts, fi.Autoscale)
	}
	f.Spec.Autoscale = nil
	if fi := info(manifests.Deployed{Function: f}, hosts); fi.Autoscale != nil {
		t.Errorf("a function without spec.autoscale has autoscale %+v", fi.Autoscale)
	}
}
