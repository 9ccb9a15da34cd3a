// Package snapshottest validates snapshot documents against snapshot.Schema in tests.
package snapshottest

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/asobserve/asobserve/internal/snapshot"
)

var (
	once     sync.Once
	compiled *jsonschema.Schema
	errComp  error
)

// Validate checks one JSON document against the snapshot schema, formats included.
func Validate(doc []byte) error {
	once.Do(func() {
		schemaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(snapshot.Schema))
		if err != nil {
			errComp = err
			return
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		if err = c.AddResource("schema.json", schemaDoc); err != nil {
			errComp = err
			return
		}
		compiled, errComp = c.Compile("schema.json")
	})
	if errComp != nil {
		return fmt.Errorf("snapshot schema: %w", errComp)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("snapshot is not JSON: %w", err)
	}
	return compiled.Validate(inst)
}
