// Package dbauth is what a database client started by `bastion-ttl connect
// --exec` needs to log in through a local forward: an RDS IAM auth token
// signed for the real endpoint (Token, Region), and the environment that
// points the client at the forward (ClientEnv).
//
// The token is a password: nothing here logs it, and no error carries it.
package dbauth
