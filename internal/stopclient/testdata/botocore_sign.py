"""Signs with botocore, the AWS CLI's own SigV4 implementation, what the
supervisor signs: the proof of identity (a presigned GetCallerIdentity with
the binding header) and the API request. Reads one JSON object on stdin,
prints one on stdout. A test compares the two implementations' signatures."""
import datetime
import json
import sys

import botocore.auth
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

job = json.load(sys.stdin)
at = datetime.datetime.strptime(job["time"], "%Y%m%dT%H%M%SZ")
botocore.auth.get_current_datetime = lambda: at
creds = Credentials(job["access_key"], job["secret_key"], job.get("token") or None)

proof = AWSRequest(method="GET", url=job["proof_url"], headers={"x-bastion-ttl-binding": job["binding"]})
SigV4QueryAuth(creds, "sts", job["region"], expires=int(job["expires"])).add_auth(proof)

api = AWSRequest(method="POST", url=job["api_url"], data=job["body"].encode(), headers=job["api_headers"])
SigV4Auth(creds, "execute-api", job["region"]).add_auth(api)

json.dump({"proof_url": proof.url, "authorization": api.headers["Authorization"]}, sys.stdout)
