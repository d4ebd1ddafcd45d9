package ledger

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/bastion-ttl/bastion-ttl/internal/stopapi"
)

// update builds one UpdateItem's expressions. Every attribute name goes
// through a placeholder (#name): ttl, owner and others are reserved words.
type update struct {
	sets    []string
	names   map[string]string
	values  map[string]types.AttributeValue
	removes []string
	n       int
}

func newUpdate() *update {
	return &update{names: map[string]string{}, values: map[string]types.AttributeValue{}}
}

func (u *update) name(attr string) string {
	k := "#" + attr
	u.names[k] = attr
	return k
}

func (u *update) value(v types.AttributeValue) string {
	u.n++
	k := ":v" + strconv.Itoa(u.n)
	u.values[k] = v
	return k
}

func (u *update) set(attr string, v types.AttributeValue) {
	u.sets = append(u.sets, u.name(attr)+" = "+u.value(v))
}

func (u *update) setIfNotExists(attr string, v types.AttributeValue) {
	n := u.name(attr)
	u.sets = append(u.sets, n+" = if_not_exists("+n+", "+u.value(v)+")")
}

func (u *update) remove(attr string) { u.removes = append(u.removes, u.name(attr)) }

// expression is the UpdateExpression; count adds one to rev, which every
// write but the outcome's does.
func (u *update) expression(count bool) string {
	var parts []string
	if len(u.sets) > 0 {
		parts = append(parts, "SET "+strings.Join(u.sets, ", "))
	}
	if len(u.removes) > 0 {
		parts = append(parts, "REMOVE "+strings.Join(u.removes, ", "))
	}
	if count {
		parts = append(parts, "ADD "+u.name(AttrRev)+" "+u.value(num(1)))
	}
	return strings.Join(parts, " ")
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
func tm(t time.Time) types.AttributeValue {
	return &types.AttributeValueMemberS{Value: t.UTC().Format(TimeLayout)}
}
func dur(d time.Duration) types.AttributeValue {
	return &types.AttributeValueMemberS{Value: d.String()}
}

func stopValue(s Stop) types.AttributeValue {
	return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
		"at": tm(s.At), "how": str(string(s.How)), "why": str(s.Why),
	}}
}

func extensionValue(e Extension) types.AttributeValue {
	return &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{
		"at": tm(e.At), "asked": dur(e.Asked), "ttl": dur(e.TTL), "capped": &types.AttributeValueMemberBOOL{Value: e.Capped},
	}}
}

func containersValue(cs []ContainerStateItem) types.AttributeValue {
	m := map[string]types.AttributeValue{}
	for _, c := range cs {
		if c.Name == "" {
			continue
		}
		v := map[string]types.AttributeValue{}
		if c.LastStatus != "" {
			v["lastStatus"] = str(c.LastStatus)
		}
		if c.ExitCode != nil {
			v["exitCode"] = num(int64(*c.ExitCode))
		}
		if c.Reason != "" {
			v["reason"] = str(c.Reason)
		}
		m[c.Name] = &types.AttributeValueMemberM{Value: v}
	}
	return &types.AttributeValueMemberM{Value: m}
}

// jsonValue is a JSON document as an attribute value: objects as maps,
// arrays as lists, numbers as numbers.
func jsonValue(v any) (types.AttributeValue, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var doc any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	return fromJSON(doc), nil
}

func fromJSON(v any) types.AttributeValue {
	switch v := v.(type) {
	case nil:
		return &types.AttributeValueMemberNULL{Value: true}
	case bool:
		return &types.AttributeValueMemberBOOL{Value: v}
	case json.Number:
		return &types.AttributeValueMemberN{Value: v.String()}
	case string:
		return str(v)
	case []any:
		l := make([]types.AttributeValue, len(v))
		for i, e := range v {
			l[i] = fromJSON(e)
		}
		return &types.AttributeValueMemberL{Value: l}
	case map[string]any:
		m := make(map[string]types.AttributeValue, len(v))
		for k, e := range v {
			m[k] = fromJSON(e)
		}
		return &types.AttributeValueMemberM{Value: m}
	}
	return str(fmt.Sprint(v))
}

func toJSON(v types.AttributeValue) any {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return v.Value
	case *types.AttributeValueMemberN:
		return json.Number(v.Value)
	case *types.AttributeValueMemberBOOL:
		return v.Value
	case *types.AttributeValueMemberL:
		out := make([]any, len(v.Value))
		for i, e := range v.Value {
			out[i] = toJSON(e)
		}
		return out
	case *types.AttributeValueMemberM:
		out := make(map[string]any, len(v.Value))
		for k, e := range v.Value {
			out[k] = toJSON(e)
		}
		return out
	}
	return nil
}

// decode reads a stored item.
func decode(m map[string]types.AttributeValue) Item {
	s := func(k string) string {
		if v, ok := m[k].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	n := func(k string) int64 {
		if v, ok := m[k].(*types.AttributeValueMemberN); ok {
			i, _ := strconv.ParseInt(v.Value, 10, 64)
			return i
		}
		return 0
	}
	t := func(k string) time.Time { return parseTime(s(k)) }
	d := func(k string) time.Duration { x, _ := time.ParseDuration(s(k)); return x }
	it := Item{
		TaskARN: s(AttrTaskARN), Owner: s(AttrOwner), Reason: s(AttrReason), Family: s(AttrFamily),
		ECSVersion: n(AttrECSVersion), Cluster: s(AttrCluster), TaskDefinition: s(AttrTaskDefinition), Group: s(AttrGroup),
		StartedBy: s(AttrStartedBy), LastStatus: s(AttrLastStatus), DesiredStatus: s(AttrDesiredStatus),
		CreatedAt: t(AttrCreatedAt), ConnectivityAt: t(AttrConnectivityAt), PullStartedAt: t(AttrPullStartedAt), StartedAt: t(AttrStartedAt),
		StoppingAt: t(AttrStoppingAt), StoppedAt: t(AttrStoppedAt), StopCode: s(AttrStopCode), StoppedReason: s(AttrStoppedReason),
		CPU: s(AttrCPU), Memory: s(AttrMemory), CPUArchitecture: s(AttrCPUArchitecture),
		RegisteredAt: t(AttrRegisteredAt), SupervisorStart: t(AttrSupervisorStart),
		TTLAsked: d(AttrTTLAsked), TTL: d(AttrTTL), Cap: d(AttrCap),
		Stop: decodeStop(m[AttrStop]), Sweep: decodeStop(m[AttrSweep]),
		Rev: n(AttrRev),
	}
	if c, ok := m[AttrContainers].(*types.AttributeValueMemberM); ok {
		it.Containers = map[string]Container{}
		for name, v := range c.Value {
			f, _ := toJSON(v).(map[string]any)
			var ct Container
			ct.LastStatus, _ = f["lastStatus"].(string)
			ct.Reason, _ = f["reason"].(string)
			if code, ok := f["exitCode"].(json.Number); ok {
				if i, err := code.Int64(); err == nil {
					x := int(i)
					ct.ExitCode = &x
				}
			}
			it.Containers[name] = ct
		}
	}
	if l, ok := m[AttrExtensions].(*types.AttributeValueMemberL); ok {
		for _, v := range l.Value {
			f, _ := toJSON(v).(map[string]any)
			e := Extension{}
			if x, ok := f["at"].(string); ok {
				e.At = parseTime(x)
			}
			if x, ok := f["asked"].(string); ok {
				e.Asked, _ = time.ParseDuration(x)
			}
			if x, ok := f["ttl"].(string); ok {
				e.TTL, _ = time.ParseDuration(x)
			}
			e.Capped, _ = f["capped"].(bool)
			it.Extensions = append(it.Extensions, e)
		}
	}
	it.ExtensionsOmitted = n(AttrExtensionsOmitted)
	if v, ok := m[AttrUsage]; ok {
		it.Usage = decodeUsage(v)
	}
	o := &it.Outcome
	o.Deadline, o.Ending, o.Verdict, o.Why = t(AttrDeadline), Ending(s(AttrEnding)), Verdict(s(AttrVerdict)), s(AttrWhy)
	if _, ok := m[AttrLatenessMs]; ok {
		o.Lateness, o.HasLateness = time.Duration(n(AttrLatenessMs))*time.Millisecond, true
	}
	if e := n(AttrExpiresAt); e > 0 {
		o.ExpiresAt = time.Unix(e, 0).UTC()
	}
	return it
}

func decodeStop(v types.AttributeValue) *Stop {
	f, ok := toJSON(v).(map[string]any)
	if !ok {
		return nil
	}
	s := &Stop{}
	if x, ok := f["at"].(string); ok {
		s.At = parseTime(x)
	}
	h, _ := f["how"].(string)
	s.How = Ending(h)
	s.Why, _ = f["why"].(string)
	return s
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// usageValue is a usage summary as stored: its JSON, with from and to in
// TimeLayout, so that RecordUsage's condition compares them as strings.
func usageValue(u stopapi.Usage) (types.AttributeValue, error) {
	v, err := jsonValue(u)
	if err != nil {
		return nil, err
	}
	m, ok := v.(*types.AttributeValueMemberM)
	if !ok {
		return nil, fmt.Errorf("usage is not an object")
	}
	m.Value["from"], m.Value["to"] = tm(u.From), tm(u.To)
	return m, nil
}

// decodeUsage is a stored usage summary; nil when it is not one.
func decodeUsage(v types.AttributeValue) *stopapi.Usage {
	b, err := json.Marshal(toJSON(v))
	if err != nil {
		return nil
	}
	var u stopapi.Usage
	if json.Unmarshal(b, &u) != nil {
		return nil
	}
	return &u
}
