package workload

import as "github.com/aerospike/aerospike-client-go/v7"

// Client is the part of *as.Client the workload uses. *as.Client and the in-process
// wrapper (inproc.Client) both satisfy it.
type Client interface {
	Put(policy *as.WritePolicy, key *as.Key, binMap as.BinMap) as.Error
	Get(policy *as.BasePolicy, key *as.Key, binNames ...string) (*as.Record, as.Error)
	Exists(policy *as.BasePolicy, key *as.Key) (bool, as.Error)
	Delete(policy *as.WritePolicy, key *as.Key) (bool, as.Error)
	Touch(policy *as.WritePolicy, key *as.Key) as.Error
	Append(policy *as.WritePolicy, key *as.Key, binMap as.BinMap) as.Error
	Prepend(policy *as.WritePolicy, key *as.Key, binMap as.BinMap) as.Error
	Add(policy *as.WritePolicy, key *as.Key, binMap as.BinMap) as.Error
	Operate(policy *as.WritePolicy, key *as.Key, operations ...*as.Operation) (*as.Record, as.Error)
	Execute(policy *as.WritePolicy, key *as.Key, packageName string, functionName string, args ...as.Value) (interface{}, as.Error)
	BatchGet(policy *as.BatchPolicy, keys []*as.Key, binNames ...string) ([]*as.Record, as.Error)
	BatchGetHeader(policy *as.BatchPolicy, keys []*as.Key) ([]*as.Record, as.Error)
	BatchExists(policy *as.BatchPolicy, keys []*as.Key) ([]bool, as.Error)
	BatchGetOperate(policy *as.BatchPolicy, keys []*as.Key, ops ...*as.Operation) ([]*as.Record, as.Error)
	BatchGetComplex(policy *as.BatchPolicy, records []*as.BatchRead) as.Error
	BatchOperate(policy *as.BatchPolicy, records []as.BatchRecordIfc) as.Error
	BatchDelete(policy *as.BatchPolicy, deletePolicy *as.BatchDeletePolicy, keys []*as.Key) ([]*as.BatchRecord, as.Error)
	Query(policy *as.QueryPolicy, statement *as.Statement) (*as.Recordset, as.Error)
	ScanAll(apolicy *as.ScanPolicy, namespace string, setName string, binNames ...string) (*as.Recordset, as.Error)
}
