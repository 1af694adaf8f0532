package checkpoint

import "github.com/reindexer/reindexer/internal/osreq"

// Short local names for the shared request helper.
var (
	perform     = osreq.Do
	errorInfo   = osreq.Info
	isNotFound  = osreq.IsNotFound
	shardsError = osreq.ShardsError
)
