package emfcheck

import "testing"

// The checker refuses what CloudWatch would not extract metrics from, so
// that a test holding a line against it can fail.
func TestCheck(t *testing.T) {
	const good = `{"_aws":{"Timestamp":1764547200000,"CloudWatchMetrics":[{"Namespace":"bastion-ttl","Dimensions":[["Function"]],"Metrics":[{"Name":"Stopped","Unit":"Count"}]}]},"Function":"terminate","Stopped":1}`
	if err := Check([]byte(good)); err != nil {
		t.Fatalf("a valid document refused: %v", err)
	}
	for name, doc := range map[string]string{
		"not JSON":            `{`,
		"no _aws":             `{"Stopped":1}`,
		"seconds, not ms":     `{"_aws":{"Timestamp":1764547200,"CloudWatchMetrics":[{"Namespace":"n","Metrics":[{"Name":"Stopped"}]}]},"Stopped":1}`,
		"no directives":       `{"_aws":{"Timestamp":1764547200000,"CloudWatchMetrics":[]}}`,
		"no namespace":        `{"_aws":{"Timestamp":1764547200000,"CloudWatchMetrics":[{"Metrics":[{"Name":"Stopped"}]}]},"Stopped":1}`,
		"dimension not there": `{"_aws":{"Timestamp":1764547200000,"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["Function"]],"Metrics":[{"Name":"Stopped"}]}]},"Stopped":1}`,
		"metric not a number": `{"_aws":{"Timestamp":1764547200000,"CloudWatchMetrics":[{"Namespace":"n","Metrics":[{"Name":"Stopped"}]}]},"Stopped":"1"}`,
		"unknown unit":        `{"_aws":{"Timestamp":1764547200000,"CloudWatchMetrics":[{"Namespace":"n","Metrics":[{"Name":"Stopped","Unit":"Parsecs"}]}]},"Stopped":1}`,
		"no metrics":          `{"_aws":{"Timestamp":1764547200000,"CloudWatchMetrics":[{"Namespace":"n","Metrics":[]}]}}`,
	} {
		if err := Check([]byte(doc)); err == nil {
			t.Errorf("%s: accepted %s", name, doc)
		}
	}
}
