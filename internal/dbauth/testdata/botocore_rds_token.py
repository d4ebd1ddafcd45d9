"""Makes RDS IAM auth tokens with botocore's generate_db_auth_token, the AWS
CLI's own (`aws rds generate-db-auth-token`), with the clock frozen at each
job's X-Amz-Date. Reads a JSON list of jobs on stdin, prints the list of
tokens on stdout. A test compares them with package dbauth's."""
import datetime
import json
import sys

import botocore.auth
import botocore.session

jobs = json.load(sys.stdin)
tokens = []
for job in jobs:
    at = datetime.datetime.strptime(job["time"], "%Y%m%dT%H%M%SZ")
    botocore.auth.get_current_datetime = lambda at=at: at
    rds = botocore.session.Session().create_client(
        "rds",
        region_name="us-east-1",  # the client's own; Region= below wins
        aws_access_key_id=job["access_key"],
        aws_secret_access_key=job["secret_key"],
        aws_session_token=job.get("session_token") or None,
    )
    tokens.append(rds.generate_db_auth_token(
        DBHostname=job["host"], Port=job["port"], DBUsername=job["user"], Region=job["region"]))
json.dump(tokens, sys.stdout)
