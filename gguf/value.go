package gguf

import (
	"fmt"
	"strings"
)

// ValueType is the on-disk type tag of a metadata value.
type ValueType uint32

// Metadata value types of the GGUF format.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("valuetype(%d)", uint32(t))
}

// fixedSize is the encoded size of a scalar of type t, or 0 for strings,
// arrays and unknown types.
func (t ValueType) fixedSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// Value is one metadata value. Scalars are held as their Go type (uint8,
// int8, uint16, int16, uint32, int32, float32, bool, string, uint64, int64,
// float64); arrays of scalars as a typed slice ([]uint8 ... []string);
// arrays of arrays as []Value.
type Value struct {
	Type ValueType
	// Elem is the element type when Type is TypeArray.
	Elem ValueType
	Data any
}

// Len returns the number of elements of an array value, or 0.
func (v Value) Len() int {
	switch d := v.Data.(type) {
	case []uint8:
		return len(d)
	case []int8:
		return len(d)
	case []uint16:
		return len(d)
	case []int16:
		return len(d)
	case []uint32:
		return len(d)
	case []int32:
		return len(d)
	case []float32:
		return len(d)
	case []bool:
		return len(d)
	case []string:
		return len(d)
	case []uint64:
		return len(d)
	case []int64:
		return len(d)
	case []float64:
		return len(d)
	case []Value:
		return len(d)
	}
	return 0
}

// Format renders v for humans; long arrays are abbreviated.
func (v Value) Format(maxElems int) string {
	if v.Type != TypeArray {
		if s, ok := v.Data.(string); ok {
			return fmt.Sprintf("%q", abbreviate(s, 200))
		}
		return fmt.Sprint(v.Data)
	}
	n := v.Len()
	if n > maxElems {
		return fmt.Sprintf("[%s array of %d]", v.Elem, n)
	}
	if ss, ok := v.Data.([]string); ok {
		q := make([]string, len(ss))
		for i, s := range ss {
			q[i] = fmt.Sprintf("%q", abbreviate(s, 200))
		}
		return "[" + strings.Join(q, " ") + "]"
	}
	return fmt.Sprint(v.Data)
}

func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// valueOf builds a Value from a Go value for the writer.
func valueOf(x any) (Value, error) {
	switch d := x.(type) {
	case uint8:
		return Value{Type: TypeUint8, Data: d}, nil
	case int8:
		return Value{Type: TypeInt8, Data: d}, nil
	case uint16:
		return Value{Type: TypeUint16, Data: d}, nil
	case int16:
		return Value{Type: TypeInt16, Data: d}, nil
	case uint32:
		return Value{Type: TypeUint32, Data: d}, nil
	case int32:
		return Value{Type: TypeInt32, Data: d}, nil
	case float32:
		return Value{Type: TypeFloat32, Data: d}, nil
	case bool:
		return Value{Type: TypeBool, Data: d}, nil
	case string:
		return Value{Type: TypeString, Data: d}, nil
	case uint64:
		return Value{Type: TypeUint64, Data: d}, nil
	case int64:
		return Value{Type: TypeInt64, Data: d}, nil
	case float64:
		return Value{Type: TypeFloat64, Data: d}, nil
	case []uint8:
		return Value{Type: TypeArray, Elem: TypeUint8, Data: d}, nil
	case []int8:
		return Value{Type: TypeArray, Elem: TypeInt8, Data: d}, nil
	case []uint16:
		return Value{Type: TypeArray, Elem: TypeUint16, Data: d}, nil
	case []int16:
		return Value{Type: TypeArray, Elem: TypeInt16, Data: d}, nil
	case []uint32:
		return Value{Type: TypeArray, Elem: TypeUint32, Data: d}, nil
	case []int32:
		return Value{Type: TypeArray, Elem: TypeInt32, Data: d}, nil
	case []float32:
		return Value{Type: TypeArray, Elem: TypeFloat32, Data: d}, nil
	case []bool:
		return Value{Type: TypeArray, Elem: TypeBool, Data: d}, nil
	case []string:
		return Value{Type: TypeArray, Elem: TypeString, Data: d}, nil
	case []uint64:
		return Value{Type: TypeArray, Elem: TypeUint64, Data: d}, nil
	case []int64:
		return Value{Type: TypeArray, Elem: TypeInt64, Data: d}, nil
	case []float64:
		return Value{Type: TypeArray, Elem: TypeFloat64, Data: d}, nil
	case Value:
		return d, nil
	case []Value:
		if len(d) == 0 {
			return Value{}, fmt.Errorf("an empty []Value has no element type; use a typed empty slice")
		}
		for _, e := range d[1:] {
			if e.Type != d[0].Type || e.Elem != d[0].Elem {
				return Value{}, fmt.Errorf("array elements of mixed types %s and %s", d[0].Type, e.Type)
			}
		}
		return Value{Type: TypeArray, Elem: TypeArray, Data: d}, nil
	}
	return Value{}, fmt.Errorf("unsupported metadata Go type %T", x)
}
