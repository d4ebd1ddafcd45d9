// Package emfcheck checks that a log line is a CloudWatch embedded metric
// format document, as CloudWatch Logs would extract metrics from it: the
// tests of package metrics and of the functions that log through it hold
// their lines against it.
//
// Test support only, like the rest of internal/testenv.
package emfcheck

import (
	"encoding/json"
	"fmt"
)

// Check checks a log line against the embedded metric format
// specification: a JSON object whose _aws member holds a Timestamp (epoch
// milliseconds) and CloudWatchMetrics directives, each with a Namespace, at
// most 30 dimensions a set and 100 metrics, every one of them a member of
// the root: dimensions strings, metrics numbers.
func Check(doc []byte) error {
	var root map[string]any
	if err := json.Unmarshal(doc, &root); err != nil {
		return err
	}
	meta, ok := root["_aws"].(map[string]any)
	if !ok {
		return fmt.Errorf("no _aws object")
	}
	if ts, ok := meta["Timestamp"].(float64); !ok || ts < 1e12 {
		return fmt.Errorf("_aws.Timestamp %v is not epoch milliseconds", meta["Timestamp"])
	}
	directives, ok := meta["CloudWatchMetrics"].([]any)
	if !ok || len(directives) == 0 {
		return fmt.Errorf("no _aws.CloudWatchMetrics")
	}
	for _, d := range directives {
		d, _ := d.(map[string]any)
		if ns, _ := d["Namespace"].(string); ns == "" || len(ns) > 255 {
			return fmt.Errorf("namespace %v", d["Namespace"])
		}
		sets, _ := d["Dimensions"].([]any)
		for _, set := range sets {
			names, _ := set.([]any)
			if len(names) == 0 || len(names) > 30 {
				return fmt.Errorf("dimension set %v", set)
			}
			for _, n := range names {
				name, _ := n.(string)
				if v, ok := root[name].(string); !ok || v == "" {
					return fmt.Errorf("dimension %q has no string value at the root", name)
				}
			}
		}
		metrics, _ := d["Metrics"].([]any)
		if len(metrics) == 0 || len(metrics) > 100 {
			return fmt.Errorf("%d metrics", len(metrics))
		}
		for _, m := range metrics {
			m, _ := m.(map[string]any)
			name, _ := m["Name"].(string)
			if _, ok := root[name].(float64); !ok {
				return fmt.Errorf("metric %q has no number at the root", name)
			}
			switch m["Unit"] {
			case "Count", "Milliseconds", "Seconds", nil:
			default:
				return fmt.Errorf("metric %q: unit %v", name, m["Unit"])
			}
		}
	}
	return nil
}
