package platform

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/surgefn/surge/internal/host"
)

// resolveReplicas settles --replicas: an explicit count stays, auto (0)
// becomes what host.AutoReplicas finds on the NATS this process uses (1
// with the embedded single server).
func (p *Platform) resolveReplicas(ctx context.Context) error {
	p.replicas = p.opts.Replicas
	if p.replicas == 0 {
		js, err := jetstream.New(p.gwConn)
		if err != nil {
			return err
		}
		if p.replicas, err = host.AutoReplicas(ctx, p.gwConn, js, p.log); err != nil {
			return err
		}
	}
	p.log.Info("streams and buckets replicated", "replicas", p.replicas, "flag", replicasText(p.opts.Replicas))
	return nil
}

// Replicas is how many replicas the streams and buckets this process
// creates get (--replicas auto resolved).
func (p *Platform) Replicas() int { return p.replicas }

// replicasText is n as --replicas spells it.
func replicasText(n int) string {
	if n == 0 {
		return "auto"
	}
	return fmt.Sprint(n)
}
