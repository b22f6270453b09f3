package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// view turns a value of tend's plain-data types (a spec.Project) into a document
// for people: the keys and field order of its JSON, empty fields left out where
// its JSON leaves them out, durations written as 1m30s and types with a String
// method (sizes) as that string. The spec types' own JSON stays as the API
// needs it (durations in nanoseconds); only this rendering is for reading.
//
// It works by reflection, so a field added to the spec shows up without a change here.
func view(v any) any {
	out, _ := viewValue(reflect.ValueOf(v))
	return out
}

// object is a mapping that keeps its keys in order, in YAML and JSON alike.
type object []field

type field struct {
	key   string
	value any
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	stringerType = reflect.TypeFor[fmt.Stringer]()
)

// viewValue renders v; empty reports a value that omitempty would leave out.
func viewValue(v reflect.Value) (out any, empty bool) {
	if !v.IsValid() {
		return nil, true
	}
	switch {
	case v.Type() == durationType:
		d := time.Duration(v.Int())
		return formatDuration(d), d == 0
	case v.CanInt() && v.Type().Implements(stringerType): // a number with units, such as spec.Bytes
		return v.Interface().(fmt.Stringer).String(), v.IsZero()
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil, true
		}
		return viewValue(v.Elem())
	case reflect.Struct:
		return viewStruct(v, nil), false // as in encoding/json, omitempty keeps structs
	case reflect.Slice, reflect.Array:
		list := make([]any, v.Len())
		for i := range v.Len() {
			list[i], _ = viewValue(v.Index(i))
		}
		return list, len(list) == 0
	case reflect.Map:
		var obj object
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			val, _ := viewValue(v.MapIndex(k))
			obj = append(obj, field{k.String(), val})
		}
		return obj, len(obj) == 0
	}
	return scalar(v), v.IsZero()
}

// viewStruct appends v's fields to obj as encoding/json names them, with the
// fields of an embedded struct inline.
func viewStruct(v reflect.Value, obj object) object {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			obj = viewStruct(v.Field(i), obj)
			continue
		}
		if name == "" {
			name = f.Name
		}
		val, empty := viewValue(v.Field(i))
		omit := (strings.Contains(","+opts+",", ",omitempty,") && empty) ||
			(strings.Contains(","+opts+",", ",omitzero,") && v.Field(i).IsZero())
		if !omit {
			obj = append(obj, field{name, val})
		}
	}
	return obj
}

// scalar strips named types (spec.Condition is a string) down to their kind.
func scalar(v reflect.Value) any {
	switch v.Kind() {
	case reflect.String:
		if strings.HasPrefix(v.String(), "\n") {
			return newlineFirst(v.String())
		}
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint()
	case reflect.Float32, reflect.Float64:
		return v.Float()
	}
	return fmt.Sprint(v.Interface())
}

// formatDuration writes d as compose files do: 1m rather than Go's 1m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalJSON writes the fields in order.
func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.key)
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// MarshalYAML writes the fields in order.
func (o object) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, f := range o {
		var k, v yaml.Node
		if err := k.Encode(f.key); err != nil {
			return nil, err
		}
		if err := v.Encode(f.value); err != nil {
			return nil, err
		}
		flowScalars(&v)
		n.Content = append(n.Content, &k, &v)
	}
	return n, nil
}

// flowScalars writes a list of scalars on one line, [CMD, /app, -probe], as
// compose files usually do.
func flowScalars(n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		return
	}
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			return
		}
	}
	n.Style = yaml.FlowStyle
}

// newlineFirst is a string that begins with a newline. yaml.v3 would write it as a
// literal block, which loses that newline when read back, so it is double-quoted.
type newlineFirst string

func (s newlineFirst) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: string(s)}, nil
}

// renderYAML and renderJSON print a view.
func renderYAML(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(view(v)); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func renderJSON(v any) ([]byte, error) {
	b, err := json.MarshalIndent(view(v), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
