package probes

// StageName is the db_client_internal_stage_seconds stage label of a stage record's id,
// or "" for an id that no row uses.
func StageName(id uint8) string {
	for name, sid := range StageID {
		if sid == id {
			return name
		}
	}
	return ""
}
