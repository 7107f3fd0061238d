package loadtest

import (
	"fmt"
	"time"
)

// Overrides are command-line changes to a loaded scenario; zero fields
// change nothing.
type Overrides struct {
	Target   string
	Duration time.Duration // the load phase; ramping stages and action offsets scale with it
	Rate     float64       // constant-arrival-rate rate; ramping: stage targets scale with it
	VUs      int           // constant-vus VUs; open model: pre-allocated and max VUs
}

// Apply changes sc by o and validates the result.
func (o *Overrides) Apply(sc *Scenario) error {
	if o.Target != "" {
		sc.Target = o.Target
	}
	if o.Duration > 0 {
		f := float64(o.Duration) / float64(sc.LoadDuration())
		scale := func(d *Duration) { *d = Duration(float64(*d) * f) }
		scale(&sc.Duration)
		for i := range sc.Stages {
			scale(&sc.Stages[i].Duration)
		}
		for i := range sc.Actions {
			scale(&sc.Actions[i].At)
		}
	}
	if o.Rate > 0 {
		switch sc.Executor {
		case ConstantArrivalRate:
			sc.Rate = o.Rate
		case RampingArrivalRate:
			peak := sc.StartRate
			for _, st := range sc.Stages {
				peak = max(peak, st.Target)
			}
			if peak > 0 {
				f := o.Rate / peak
				sc.StartRate *= f
				for i := range sc.Stages {
					sc.Stages[i].Target *= f
				}
			}
		}
	}
	if o.VUs > 0 {
		if sc.Executor == ConstantVUs {
			sc.VUs = o.VUs
		} else {
			sc.PreAllocatedVUs, sc.MaxVUsField = o.VUs, o.VUs
		}
	}
	if err := sc.Validate(); err != nil {
		return fmt.Errorf("loadtest: scenario %s after the overrides: %w", sc.Name, err)
	}
	return nil
}
