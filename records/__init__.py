"""Result records: their parts, the record and its file, the store, its summary tables and the schema-4 move."""
