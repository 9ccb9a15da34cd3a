package probes

// StageName is the db_client_internal_stage_seconds stage label of a stage record's id,
// or "" for an id that no stage has.
func StageName(id uint8) string { return stageLabels[StageID(id)] }
