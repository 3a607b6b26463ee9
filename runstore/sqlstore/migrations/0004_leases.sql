-- 0004: named leases (runstore.Leaser): a role one replica of many plays at
-- a time, such as recording the live JetDrive stream. token is raised by
-- every acquisition (the fencing token a renewal is checked against);
-- until_us is the lease's expiry on the store's clock.
CREATE TABLE leases (
    name       VARCHAR(128) PRIMARY KEY,
    holder     VARCHAR(128) NOT NULL,
    token      BIGINT NOT NULL,
    until_us   BIGINT NOT NULL,
    updated_us BIGINT NOT NULL
);
