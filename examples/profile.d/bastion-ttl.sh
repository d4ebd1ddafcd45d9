# /etc/profile.d/bastion-ttl.sh: tell the people on a bastion when it goes.
# At login it prints the bastion's deadline and how to ask for more time; in
# interactive bash the prompt shows the time left, and in the last minutes
# (BASTION_WARN_BEFORE, 10m by default) each prompt rings and warns. Needs
# the supervisor binary in the bastion image (see
# examples/healthcheck.Dockerfile); it asks the sidecar at 127.0.0.1:8311
# first, so it needs none of the sidecar's environment. With no sidecar
# answering (the health-check setup) and no BASTION_TTL in the login
# environment, the deadline is unknown here, and it says so: it never
# guesses one from a default.
if command -v supervisor >/dev/null 2>&1; then
	__bastion_ttl_line=$(supervisor status --short 2>/dev/null) || __bastion_ttl_line='deadline unknown: supervisor status cannot tell'
	case $__bastion_ttl_line in
	'deadline unknown'*)
		printf 'bastion-ttl: %s; this bastion still stops at its TTL\n' "$__bastion_ttl_line"
		;;
	*)
		printf 'bastion-ttl: %s\n' "$__bastion_ttl_line"
		;;
	esac
	unset __bastion_ttl_line
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
			case $line in
			'deadline unknown'* | '')
				__bastion_ttl_left='deadline unknown'
				;;
			*)
				__bastion_ttl_left=${line%%,*}
				__bastion_ttl_left=${__bastion_ttl_left#WARNING: }
				;;
			esac
		}
		PROMPT_COMMAND="__bastion_ttl_prompt${PROMPT_COMMAND:+; $PROMPT_COMMAND}"
		PS1='[${__bastion_ttl_left:-bastion}] '"$PS1"
	fi
fi
