-- The catalog lists to each caller what it may pull (issue 13): public repositories
-- are one branch of that query, read in name order from this index rather than by a
-- scan of every repository.
CREATE INDEX repositories_public ON repositories (name) WHERE visibility = 'public';
