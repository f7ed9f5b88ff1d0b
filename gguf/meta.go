package gguf

import (
	"fmt"
	"math"
)

// Lookup returns the metadata value stored under key.
func (f *File) Lookup(key string) (Value, bool) {
	i, ok := f.index[key]
	if !ok {
		return Value{}, false
	}
	return f.Metadata[i].Value, true
}

// Has reports whether key is present.
func (f *File) Has(key string) bool { _, ok := f.index[key]; return ok }

func (f *File) get(key string) (Value, error) {
	v, ok := f.Lookup(key)
	if !ok {
		return v, fmt.Errorf("gguf: %q: %w", key, ErrNotFound)
	}
	return v, nil
}

func typeErr(key string, v Value, want string) error {
	t := v.Type.String()
	if v.Type == TypeArray {
		t = "array of " + v.Elem.String()
	}
	return fmt.Errorf("gguf: %q is %s, want %s", key, t, want)
}

// String returns a string value.
func (f *File) String(key string) (string, error) {
	v, err := f.get(key)
	if err != nil {
		return "", err
	}
	s, ok := v.Data.(string)
	if !ok {
		return "", typeErr(key, v, "string")
	}
	return s, nil
}

// Uint returns a non-negative integer value of any integer type.
func (f *File) Uint(key string) (uint64, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	u, ok := asUint(v)
	if !ok {
		return 0, typeErr(key, v, "a non-negative integer")
	}
	return u, nil
}

// Int returns an integer value of any integer type that fits in int64.
func (f *File) Int(key string) (int64, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	switch d := v.Data.(type) {
	case int8:
		return int64(d), nil
	case int16:
		return int64(d), nil
	case int32:
		return int64(d), nil
	case int64:
		return d, nil
	}
	u, ok := asUint(v)
	if !ok || u > math.MaxInt64 {
		return 0, typeErr(key, v, "an integer")
	}
	return int64(u), nil
}

// Float returns a floating-point value (integers are accepted too).
func (f *File) Float(key string) (float64, error) {
	v, err := f.get(key)
	if err != nil {
		return 0, err
	}
	switch d := v.Data.(type) {
	case float32:
		return float64(d), nil
	case float64:
		return d, nil
	}
	if i, err := f.Int(key); err == nil {
		return float64(i), nil
	}
	return 0, typeErr(key, v, "a number")
}

// Bool returns a boolean value.
func (f *File) Bool(key string) (bool, error) {
	v, err := f.get(key)
	if err != nil {
		return false, err
	}
	b, ok := v.Data.(bool)
	if !ok {
		return false, typeErr(key, v, "bool")
	}
	return b, nil
}

// Strings returns an array of strings.
func (f *File) Strings(key string) ([]string, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.Data.([]string)
	if !ok {
		return nil, typeErr(key, v, "array of string")
	}
	return s, nil
}

// Float32s returns an array of float32.
func (f *File) Float32s(key string) ([]float32, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	s, ok := v.Data.([]float32)
	if !ok {
		return nil, typeErr(key, v, "array of float32")
	}
	return s, nil
}

// Int32s returns an array of integers that fit in int32 (int32, uint32,
// and the smaller integer types are accepted).
func (f *File) Int32s(key string) ([]int32, error) {
	v, err := f.get(key)
	if err != nil {
		return nil, err
	}
	switch d := v.Data.(type) {
	case []int32:
		return d, nil
	case []uint32:
		for i, x := range d {
			if x > math.MaxInt32 {
				return nil, fmt.Errorf("gguf: %q element %d = %d overflows int32", key, i, x)
			}
		}
		return widen(d), nil
	case []int8:
		return widen(d), nil
	case []uint8:
		return widen(d), nil
	case []int16:
		return widen(d), nil
	case []uint16:
		return widen(d), nil
	}
	return nil, typeErr(key, v, "array of int32")
}

func asUint(v Value) (uint64, bool) {
	switch d := v.Data.(type) {
	case uint8:
		return uint64(d), true
	case uint16:
		return uint64(d), true
	case uint32:
		return uint64(d), true
	case uint64:
		return d, true
	case int8:
		return uint64(d), d >= 0
	case int16:
		return uint64(d), d >= 0
	case int32:
		return uint64(d), d >= 0
	case int64:
		return uint64(d), d >= 0
	}
	return 0, false
}

// widen converts an integer array that fits in int32 (checked by the
// caller) to []int32.
func widen[T int8 | uint8 | int16 | uint16 | uint32](d []T) []int32 {
	out := make([]int32, len(d))
	for i, x := range d {
		out[i] = int32(x)
	}
	return out
}
