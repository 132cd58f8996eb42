package celpolicy

import (
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"sort"
	"strings"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"

	"github.com/fhirguard/fhirguard/fhirrest"
	"github.com/fhirguard/fhirguard/middleware"
)

// CEL type names of the policy variables.
const (
	requestTypeName     = "fhirguard.Request"
	tokenTypeName       = "fhirguard.Token"
	contextItemTypeName = "fhirguard.ContextItem"
)

var (
	requestType     = types.NewObjectType(requestTypeName)
	tokenType       = types.NewObjectType(tokenTypeName)
	contextItemType = types.NewObjectType(contextItemTypeName)

	stringListType = types.NewListType(types.StringType)
	queryMapType   = types.NewMapType(types.StringType, stringListType)
	headerMapType  = types.NewMapType(types.StringType, types.StringType)
	claimsMapType  = types.NewMapType(types.StringType, types.DynType)
)

// field is one field of a policy object type: its CEL type and how to read
// it from the object without reflection.
type field struct {
	typ   *types.Type
	get   func(obj any) ref.Val
	isSet func(obj any) bool
}

// objectType is a policy object type: request, token or context item.
type objectType struct {
	typ    *types.Type
	names  []string
	fields map[string]*types.FieldType
}

func newObjectType(t *types.Type, fields map[string]field) *objectType {
	o := &objectType{typ: t, fields: map[string]*types.FieldType{}}
	for name, f := range fields {
		f := f
		o.names = append(o.names, name)
		o.fields[name] = &types.FieldType{
			Type:    f.typ,
			IsSet:   func(obj any) bool { return f.isSet(obj) },
			GetFrom: func(obj any) (any, error) { return f.get(obj), nil },
		}
	}
	sort.Strings(o.names)
	return o
}

// stringField declares a string field read by get; it is set when non-empty.
func stringField[T any](get func(T) string) field {
	return field{
		typ: types.StringType,
		get: func(obj any) ref.Val {
			o, ok := obj.(T)
			if !ok {
				return badObject(obj)
			}
			return types.String(get(o))
		},
		isSet: func(obj any) bool {
			o, ok := obj.(T)
			return ok && get(o) != ""
		},
	}
}

// internedStringField is a stringField whose common values are CEL values
// made once, so that reading them allocates nothing.
func internedStringField[T any](get func(T) string, common ...string) field {
	vals := make(map[string]ref.Val, len(common))
	for _, c := range common {
		vals[c] = types.String(c)
	}
	f := stringField(get)
	f.get = func(obj any) ref.Val {
		o, ok := obj.(T)
		if !ok {
			return badObject(obj)
		}
		s := get(o)
		if v, ok := vals[s]; ok {
			return v
		}
		return types.String(s)
	}
	return f
}

func badObject(obj any) ref.Val {
	return types.NewErr("celpolicy: unexpected object %T", obj)
}

// interactionNames returns the names of the FHIR interaction kinds.
func interactionNames() []string {
	var names []string
	for k := fhirrest.KindUnknown + 1; k.String() != fhirrest.KindUnknown.String(); k++ {
		names = append(names, k.String())
	}
	return names
}

// requestObj is the CEL value of the request variable. It is the evaluation
// state seen through the request type.
type requestObj evalState

// tokenObj is the CEL value of the token variable.
type tokenObj evalState

// contextItemObj is the CEL value of one fhirContext item.
type contextItemObj struct{ item *middleware.ContextItem }

var requestFields = newObjectType(requestType, map[string]field{
	"method": internedStringField(func(o *requestObj) string { return (*evalState)(o).method() },
		"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"),
	"path": stringField(func(o *requestObj) string { return o.r.URL.Path }),
	"interaction": internedStringField(func(o *requestObj) string { return (*evalState)(o).interaction() },
		interactionNames()...),
	"resourceType":    stringField(func(o *requestObj) string { return (*evalState)(o).in().ResourceType }),
	"id":              stringField(func(o *requestObj) string { return (*evalState)(o).in().ID }),
	"versionId":       stringField(func(o *requestObj) string { return (*evalState)(o).in().VersionID }),
	"operation":       stringField(func(o *requestObj) string { return (*evalState)(o).in().Operation }),
	"compartmentType": stringField(func(o *requestObj) string { t, _ := (*evalState)(o).compartment(); return t }),
	"compartmentId":   stringField(func(o *requestObj) string { _, id := (*evalState)(o).compartment(); return id }),
	"context": internedStringField(func(o *requestObj) string { return (*evalState)(o).grantContext() },
		"patient", "user", "system"),
	"remoteAddr": stringField(func(o *requestObj) string { return o.r.RemoteAddr }),
	"remoteIp":   stringField(func(o *requestObj) string { return remoteIP(o.r.RemoteAddr) }),
	"query": {
		typ: queryMapType,
		get: func(obj any) ref.Val {
			o, ok := obj.(*requestObj)
			if !ok {
				return badObject(obj)
			}
			return &stringsMap{values: (*evalState)(o).query()}
		},
		isSet: func(obj any) bool {
			o, ok := obj.(*requestObj)
			return ok && len((*evalState)(o).query()) > 0
		},
	},
	"headers": {
		typ: headerMapType,
		get: func(obj any) ref.Val {
			o, ok := obj.(*requestObj)
			if !ok {
				return badObject(obj)
			}
			return &stringsMap{values: o.r.Header, header: true}
		},
		isSet: func(obj any) bool {
			o, ok := obj.(*requestObj)
			return ok && len(o.r.Header) > 0
		},
	},
})

var tokenFields = newObjectType(tokenType, map[string]field{
	"sub":       stringField(func(o *tokenObj) string { return o.t.Subject }),
	"clientId":  stringField(func(o *tokenObj) string { return o.t.ClientID }),
	"issuer":    stringField(func(o *tokenObj) string { return o.t.Issuer }),
	"patient":   stringField(func(o *tokenObj) string { return o.t.Patient }),
	"encounter": stringField(func(o *tokenObj) string { return o.t.Encounter }),
	"fhirUser":  stringField(func(o *tokenObj) string { return o.t.FHIRUser }),
	"tenant":    stringField(func(o *tokenObj) string { return o.t.Tenant }),
	"scopes": {
		typ: stringListType,
		get: func(obj any) ref.Val {
			o, ok := obj.(*tokenObj)
			if !ok {
				return badObject(obj)
			}
			return scopeList(o.t.Scopes)
		},
		isSet: func(obj any) bool {
			o, ok := obj.(*tokenObj)
			return ok && o.t.Scopes != nil && o.t.Scopes.Set().Len() > 0
		},
	},
	"audience": {
		typ: stringListType,
		get: func(obj any) ref.Val {
			o, ok := obj.(*tokenObj)
			if !ok {
				return badObject(obj)
			}
			return types.NewStringList(types.DefaultTypeAdapter, o.t.Audience)
		},
		isSet: func(obj any) bool {
			o, ok := obj.(*tokenObj)
			return ok && len(o.t.Audience) > 0
		},
	},
	"exp": {
		typ: types.TimestampType,
		get: func(obj any) ref.Val {
			o, ok := obj.(*tokenObj)
			if !ok {
				return badObject(obj)
			}
			return types.Timestamp{Time: o.t.Expiry.UTC()}
		},
		isSet: func(obj any) bool {
			o, ok := obj.(*tokenObj)
			return ok && !o.t.Expiry.IsZero()
		},
	},
	"fhirContext": {
		typ: types.NewListType(contextItemType),
		get: func(obj any) ref.Val {
			o, ok := obj.(*tokenObj)
			if !ok {
				return badObject(obj)
			}
			items := o.t.FHIRContext
			return types.NewDynamicList(contextItemAdapter{}, items)
		},
		isSet: func(obj any) bool {
			o, ok := obj.(*tokenObj)
			return ok && len(o.t.FHIRContext) > 0
		},
	},
	"claims": {
		typ: claimsMapType,
		get: func(obj any) ref.Val {
			o, ok := obj.(*tokenObj)
			if !ok {
				return badObject(obj)
			}
			if o.t.Claims == nil {
				return types.NewStringInterfaceMap(types.DefaultTypeAdapter, map[string]any{})
			}
			return types.NewStringInterfaceMap(types.DefaultTypeAdapter, o.t.Claims)
		},
		isSet: func(obj any) bool {
			o, ok := obj.(*tokenObj)
			return ok && len(o.t.Claims) > 0
		},
	},
})

var contextItemFields = newObjectType(contextItemType, map[string]field{
	"reference": stringField(func(o contextItemObj) string { return o.item.Reference }),
	"canonical": stringField(func(o contextItemObj) string { return o.item.Canonical }),
	"type":      stringField(func(o contextItemObj) string { return o.item.Type }),
	"role":      stringField(func(o contextItemObj) string { return o.item.Role }),
	"identifier": {
		typ: claimsMapType,
		get: func(obj any) ref.Val {
			o, ok := obj.(contextItemObj)
			if !ok {
				return badObject(obj)
			}
			m := o.item.Identifier
			if m == nil {
				m = map[string]any{}
			}
			return types.NewStringInterfaceMap(types.DefaultTypeAdapter, m)
		},
		isSet: func(obj any) bool {
			o, ok := obj.(contextItemObj)
			return ok && len(o.item.Identifier) > 0
		},
	},
})

// contextItemAdapter turns the elements of Token.FHIRContext into context
// item objects when a rule reads them.
type contextItemAdapter struct{}

func (contextItemAdapter) NativeToValue(v any) ref.Val {
	switch v := v.(type) {
	case middleware.ContextItem:
		return contextItemObj{item: &v}
	case *middleware.ContextItem:
		return contextItemObj{item: v}
	}
	return types.DefaultTypeAdapter.NativeToValue(v)
}

// ref.Val implementations of the object values. Policies read fields; the
// remaining methods give sane answers for comparisons and conversions.

func (o *requestObj) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("celpolicy: request cannot be converted to %v", t)
}
func (o *requestObj) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return requestType
	}
	return types.NewErr("celpolicy: request cannot be converted to %v", t)
}
func (o *requestObj) Equal(other ref.Val) ref.Val { return types.Bool(other == ref.Val(o)) }
func (o *requestObj) Type() ref.Type              { return requestType }
func (o *requestObj) Value() any                  { return o }

func (o *tokenObj) ConvertToNative(t reflect.Type) (any, error) {
	return nil, fmt.Errorf("celpolicy: token cannot be converted to %v", t)
}
func (o *tokenObj) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return tokenType
	}
	return types.NewErr("celpolicy: token cannot be converted to %v", t)
}
func (o *tokenObj) Equal(other ref.Val) ref.Val { return types.Bool(other == ref.Val(o)) }
func (o *tokenObj) Type() ref.Type              { return tokenType }
func (o *tokenObj) Value() any                  { return o }

func (o contextItemObj) ConvertToNative(t reflect.Type) (any, error) {
	if t == reflect.TypeFor[middleware.ContextItem]() {
		return *o.item, nil
	}
	return nil, fmt.Errorf("celpolicy: context item cannot be converted to %v", t)
}
func (o contextItemObj) ConvertToType(t ref.Type) ref.Val {
	if t == types.TypeType {
		return contextItemType
	}
	return types.NewErr("celpolicy: context item cannot be converted to %v", t)
}
func (o contextItemObj) Equal(other ref.Val) ref.Val {
	p, ok := other.(contextItemObj)
	if !ok {
		return types.False
	}
	a, b := o.item, p.item
	return types.Bool(a == b || a.Reference == b.Reference && a.Canonical == b.Canonical &&
		a.Type == b.Type && a.Role == b.Role && reflect.DeepEqual(a.Identifier, b.Identifier))
}
func (o contextItemObj) Type() ref.Type { return contextItemType }
func (o contextItemObj) Value() any     { return o }

// stringsMap presents url.Values (map(string, list(string))) or an
// http.Header (map(string, string), lower-case names, repeated values
// joined with ", ") to CEL without copying it.
type stringsMap struct {
	values map[string][]string
	header bool
}

func (m *stringsMap) key(k string) string {
	if m.header {
		return textproto.CanonicalMIMEHeaderKey(k)
	}
	return k
}

func (m *stringsMap) lookup(k string) ([]string, bool) {
	v, ok := m.values[m.key(k)]
	if !ok && m.header {
		// Headers set directly in the map may not be canonical.
		for name, vv := range m.values {
			if strings.EqualFold(name, k) {
				return vv, true
			}
		}
	}
	return v, ok
}

func (m *stringsMap) value(v []string) ref.Val {
	if !m.header {
		return types.NewStringList(types.DefaultTypeAdapter, v)
	}
	switch len(v) {
	case 0:
		return types.String("")
	case 1:
		return types.String(v[0])
	}
	return types.String(strings.Join(v, ", "))
}

// Find implements traits.Mapper.
func (m *stringsMap) Find(key ref.Val) (ref.Val, bool) {
	k, ok := key.(types.String)
	if !ok {
		return types.MaybeNoSuchOverloadErr(key), false
	}
	v, found := m.lookup(string(k))
	if !found {
		return nil, false
	}
	return m.value(v), true
}

// Get implements traits.Indexer.
func (m *stringsMap) Get(key ref.Val) ref.Val {
	v, found := m.Find(key)
	if !found {
		if v != nil {
			return v
		}
		return types.NewErr("no such key: %v", key)
	}
	return v
}

// Contains implements traits.Container.
func (m *stringsMap) Contains(key ref.Val) ref.Val {
	v, found := m.Find(key)
	if !found && v != nil {
		return v
	}
	return types.Bool(found)
}

// Size implements traits.Sizer.
func (m *stringsMap) Size() ref.Val { return types.Int(len(m.values)) }

func (m *stringsMap) keys() []string {
	keys := make([]string, 0, len(m.values))
	for k := range m.values {
		if m.header {
			k = strings.ToLower(k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Iterator implements traits.Iterable: the keys in sorted order.
func (m *stringsMap) Iterator() traits.Iterator {
	return types.NewStringList(types.DefaultTypeAdapter, m.keys()).Iterator()
}

func (m *stringsMap) materialize() ref.Val {
	if m.header {
		out := make(map[string]string, len(m.values))
		for _, k := range m.keys() {
			v, _ := m.lookup(k)
			out[k] = string(m.value(v).(types.String))
		}
		return types.NewStringStringMap(types.DefaultTypeAdapter, out)
	}
	out := make(map[string]any, len(m.values))
	for k, v := range m.values {
		out[k] = v
	}
	return types.NewStringInterfaceMap(types.DefaultTypeAdapter, out)
}

// ConvertToNative implements ref.Val.
func (m *stringsMap) ConvertToNative(t reflect.Type) (any, error) {
	return m.materialize().ConvertToNative(t)
}

// ConvertToType implements ref.Val.
func (m *stringsMap) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case types.MapType:
		return m
	case types.TypeType:
		if m.header {
			return headerMapType
		}
		return queryMapType
	}
	return types.NewErr("type conversion error from map to %v", t)
}

// Equal implements ref.Val.
func (m *stringsMap) Equal(other ref.Val) ref.Val { return m.materialize().Equal(other) }

// Type implements ref.Val.
func (m *stringsMap) Type() ref.Type { return types.MapType }

// Value implements ref.Val.
func (m *stringsMap) Value() any {
	if m.header {
		return http.Header(m.values)
	}
	return url.Values(m.values)
}

// remoteIP returns the host of a RemoteAddr ("192.0.2.1:1234" → "192.0.2.1").
func remoteIP(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
