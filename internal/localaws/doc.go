// Package localaws holds local stand-ins for the AWS endpoints bastion-ttl
// talks to, shared by the demo, the benchmarks and the tests: an API Gateway
// route with IAM authorization (apigateway), SigV4 verification (sigv4),
// STS's GetCallerIdentity for presigned identity proofs (sts), IAM's GetRole
// (iamapi), an in-memory ECS endpoint (ecsapi) and task metadata documents
// (taskmetadata), ECS Task State Change events from polling (ecsevents);
// and stack, which wires ECS, STS, the terminate function, the API and
// the ledger together as a deployed stack has them.
//
// None of it is production code: a dependency test fails if the supervisor or
// a Lambda links any package under this one.
package localaws
