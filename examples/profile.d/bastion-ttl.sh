# /etc/profile.d/bastion-ttl.sh: tell the people on a bastion when it goes.
# At login it prints the bastion's deadline and how to ask for more time; in
# interactive bash the prompt shows the time left, and in the last minutes
# (BASTION_WARN_BEFORE, 10m by default) each prompt rings and warns. Needs
# the supervisor binary in the bastion image (see
# examples/healthcheck.Dockerfile); it asks the sidecar at 127.0.0.1:8311
# first, so it needs none of the sidecar's environment.
if command -v supervisor >/dev/null 2>&1; then
	printf 'bastion-ttl: %s\n' "$(supervisor status --short 2>/dev/null || echo 'deadline unknown')"
	printf 'bastion-ttl: "supervisor extend 30m" asks for more time, "supervisor status" says more\n'
	if [ -n "${BASH_VERSION:-}" ] && [ -n "${PS1:-}" ]; then
		__bastion_ttl_prompt() {
			local line
			line=$(supervisor status --short 2>/dev/null)
			case $line in
			WARNING:*)
				printf '\a*** bastion-ttl: %s; "supervisor extend 30m" for more\n' "$line" >&2
				;;
			esac
			__bastion_ttl_left=${line%%,*}
			__bastion_ttl_left=${__bastion_ttl_left#WARNING: }
		}
		PROMPT_COMMAND="__bastion_ttl_prompt${PROMPT_COMMAND:+; $PROMPT_COMMAND}"
		PS1='[${__bastion_ttl_left:-bastion}] '"$PS1"
	fi
fi
