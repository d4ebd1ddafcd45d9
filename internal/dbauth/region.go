package dbauth

import "strings"

// Region returns the AWS Region in an RDS or Aurora endpoint name
// (NAME.[cluster-]ID.REGION.rds.amazonaws.com, or .rds.amazonaws.com.cn),
// so a token is signed for the database's Region even when the CLI's
// profile points elsewhere. False for any other name (a custom DNS
// record, an IP address): then the caller must be told the Region.
func Region(host string) (string, bool) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, suffix := range []string{".rds.amazonaws.com", ".rds.amazonaws.com.cn"} {
		rest, ok := strings.CutSuffix(host, suffix)
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, '.')
		if i <= 0 {
			return "", false // no name before the Region
		}
		if region := rest[i+1:]; validRegion(region) {
			return region, true
		}
	}
	return "", false
}
