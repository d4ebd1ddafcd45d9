// Package template holds the tests of template.yaml, the SAM stack at the
// repository's root, and no code: `go test ./template` runs them, and each
// is named TestTemplate..., so `-run TestTemplate` selects them all.
//
// They read the stack after the SAM transform (what CloudFormation really
// creates), resolved for the parameters as CloudFormation does, through the
// support packages internal/testenv/samtemplate (the transform),
// internal/testenv/cfn (conditions, and the values a deployment would give)
// and internal/testenv/iamsim (an IAM policy simulator). A security property
// of the stack fails a test here before it can reach an account.
//
// One file a subject: template_test.go (the transform, lint, both API
// settings, the functions, the sweeper, the outputs), api_test.go (the stop
// API's routes and the private setting), iam_statements_test.go (the shape
// of the IAM policies), iam_decisions_test.go (the simulator's decisions on
// the stack's roles and resource policies), iam_people_test.go (the people's
// policies and the bastions' execution role, and
// examples/launcher-policy.json, which
// `go test ./template -run TestTemplateLauncherPolicyExample -update-examples`
// rewrites), roles_test.go (ExtraTaskRoleNames), alarms_test.go and
// throttle_filters_test.go (the alarms, the dashboard, the metric filters fed
// real log lines), sar_test.go (the Serverless Application Repository).
package template
