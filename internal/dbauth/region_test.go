package dbauth

import "testing"

func TestRegion(t *testing.T) {
	cases := []struct {
		host, want string
		ok         bool
	}{
		{"orders.cluster-abc.eu-west-1.rds.amazonaws.com", "eu-west-1", true},
		{"orders.cluster-ro-abc.eu-west-1.rds.amazonaws.com", "eu-west-1", true},
		{"shop.c9akciq32.us-gov-west-1.rds.amazonaws.com", "us-gov-west-1", true},
		{"proxy1.proxy-c9akciq32.ap-southeast-2.rds.amazonaws.com", "ap-southeast-2", true},
		{"db.c9akciq32.cn-north-1.rds.amazonaws.com.cn", "cn-north-1", true},
		{"Orders.Cluster-Abc.EU-WEST-1.RDS.AmazonAWS.com.", "eu-west-1", true}, // DNS ignores case and the root dot
		{"eu-west-1.rds.amazonaws.com", "", false},                             // no database name
		{"orders.cluster-abc.rds.amazonaws.com", "", false},                    // no Region label
		{"orders.eu-west-1.rds.amazonaws.com.evil.example", "", false},
		{"orders.cluster-abc.eu-west-1.rds.amazonaws.com:5432", "", false}, // a host, not host:port
		{"db.internal.example.com", "", false},
		{"10.0.12.7", "", false},
		{"", "", false},
	}
	for _, c := range cases {
		got, ok := Region(c.host)
		if got != c.want || ok != c.ok {
			t.Errorf("Region(%q) = %q, %v; want %q, %v", c.host, got, ok, c.want, c.ok)
		}
	}
}
