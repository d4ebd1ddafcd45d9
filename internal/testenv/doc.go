// Package testenv starts the real tools that integration tests run against:
// moto_server (the ECS API, through package moto's mending proxy) and the AWS
// Lambda Runtime Interface Emulator. Where a tool is missing, a test skips
// with a loud message; with BASTION_TEST_STRICT=1 (set by .ci/run) it fails
// instead. Under go test -short every test that needs one skips, and so does
// every test that waits on the wall clock (RealTime).
//
// Its subpackages are what tests share besides: moto (the mending proxy),
// clocktest (the fake clocks), cfn (the CloudFormation template evaluator),
// samtemplate (the SAM transform of a template), iamsim (an IAM policy
// simulator's decisions), filterpattern (CloudWatch Logs filter patterns),
// emfcheck (the embedded metric format) and loopback (real TCP servers and
// clients on 127.0.0.1).
//
// Test support only: a dependency test fails if the supervisor or a Lambda
// links it.
package testenv
