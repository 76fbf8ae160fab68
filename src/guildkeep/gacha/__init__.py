"""The gacha collection game: catalogue, onboarding, currencies, daily, summons, inventory, auctions."""
