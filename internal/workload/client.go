package workload

import as "github.com/aerospike/aerospike-client-go/v7"

// Client is the part of *as.Client the workload uses. *as.Client and the in-process
// wrapper (inproc.Client) both satisfy it.
type Client interface {
	Put(policy *as.WritePolicy, key *as.Key, binMap as.BinMap) as.Error
	PutBins(policy *as.WritePolicy, key *as.Key, bins ...*as.Bin) as.Error
	PutObject(policy *as.WritePolicy, key *as.Key, obj interface{}) as.Error
	Get(policy *as.BasePolicy, key *as.Key, binNames ...string) (*as.Record, as.Error)
	GetHeader(policy *as.BasePolicy, key *as.Key) (*as.Record, as.Error)
	GetObject(policy *as.BasePolicy, key *as.Key, obj interface{}) as.Error
	Exists(policy *as.BasePolicy, key *as.Key) (bool, as.Error)
	Delete(policy *as.WritePolicy, key *as.Key) (bool, as.Error)
	Touch(policy *as.WritePolicy, key *as.Key) as.Error
	Append(policy *as.WritePolicy, key *as.Key, binMap as.BinMap) as.Error
	AppendBins(policy *as.WritePolicy, key *as.Key, bins ...*as.Bin) as.Error
	Prepend(policy *as.WritePolicy, key *as.Key, binMap as.BinMap) as.Error
	PrependBins(policy *as.WritePolicy, key *as.Key, bins ...*as.Bin) as.Error
	Add(policy *as.WritePolicy, key *as.Key, binMap as.BinMap) as.Error
	AddBins(policy *as.WritePolicy, key *as.Key, bins ...*as.Bin) as.Error
	Operate(policy *as.WritePolicy, key *as.Key, operations ...*as.Operation) (*as.Record, as.Error)
	Execute(policy *as.WritePolicy, key *as.Key, packageName string, functionName string, args ...as.Value) (interface{}, as.Error)
	BatchGet(policy *as.BatchPolicy, keys []*as.Key, binNames ...string) ([]*as.Record, as.Error)
	BatchGetHeader(policy *as.BatchPolicy, keys []*as.Key) ([]*as.Record, as.Error)
	BatchExists(policy *as.BatchPolicy, keys []*as.Key) ([]bool, as.Error)
	BatchGetOperate(policy *as.BatchPolicy, keys []*as.Key, ops ...*as.Operation) ([]*as.Record, as.Error)
	BatchGetComplex(policy *as.BatchPolicy, records []*as.BatchRead) as.Error
	BatchGetObjects(policy *as.BatchPolicy, keys []*as.Key, objects []interface{}) ([]bool, as.Error)
	BatchOperate(policy *as.BatchPolicy, records []as.BatchRecordIfc) as.Error
	BatchDelete(policy *as.BatchPolicy, deletePolicy *as.BatchDeletePolicy, keys []*as.Key) ([]*as.BatchRecord, as.Error)
	BatchExecute(policy *as.BatchPolicy, udfPolicy *as.BatchUDFPolicy, keys []*as.Key, packageName string, functionName string, args ...as.Value) ([]*as.BatchRecord, as.Error)
	Query(policy *as.QueryPolicy, statement *as.Statement) (*as.Recordset, as.Error)
	QueryPartitions(policy *as.QueryPolicy, statement *as.Statement, partitionFilter *as.PartitionFilter) (*as.Recordset, as.Error)
	QueryNode(policy *as.QueryPolicy, node *as.Node, statement *as.Statement) (*as.Recordset, as.Error)
	QueryObjects(policy *as.QueryPolicy, statement *as.Statement, objChan interface{}) (*as.Recordset, as.Error)
	QueryPartitionObjects(policy *as.QueryPolicy, statement *as.Statement, objChan interface{}, partitionFilter *as.PartitionFilter) (*as.Recordset, as.Error)
	QueryNodeObjects(policy *as.QueryPolicy, node *as.Node, statement *as.Statement, objChan interface{}) (*as.Recordset, as.Error)
	ScanAll(apolicy *as.ScanPolicy, namespace string, setName string, binNames ...string) (*as.Recordset, as.Error)
	ScanPartitions(apolicy *as.ScanPolicy, partitionFilter *as.PartitionFilter, namespace string, setName string, binNames ...string) (*as.Recordset, as.Error)
	ScanNode(apolicy *as.ScanPolicy, node *as.Node, namespace string, setName string, binNames ...string) (*as.Recordset, as.Error)
	ScanAllObjects(apolicy *as.ScanPolicy, objChan interface{}, namespace string, setName string, binNames ...string) (*as.Recordset, as.Error)
	ScanPartitionObjects(apolicy *as.ScanPolicy, objChan interface{}, partitionFilter *as.PartitionFilter, namespace string, setName string, binNames ...string) (*as.Recordset, as.Error)
	ScanNodeObjects(apolicy *as.ScanPolicy, node *as.Node, objChan interface{}, namespace string, setName string, binNames ...string) (*as.Recordset, as.Error)
	QueryExecute(policy *as.QueryPolicy, writePolicy *as.WritePolicy, statement *as.Statement, ops ...*as.Operation) (*as.ExecuteTask, as.Error)
	ExecuteUDF(policy *as.QueryPolicy, statement *as.Statement, packageName string, functionName string, functionArgs ...as.Value) (*as.ExecuteTask, as.Error)
	ExecuteUDFNode(policy *as.QueryPolicy, node *as.Node, statement *as.Statement, packageName string, functionName string, functionArgs ...as.Value) (*as.ExecuteTask, as.Error)
	GetNodes() []*as.Node
}
